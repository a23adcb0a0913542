using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Vsock.Actors.Settings;

namespace Vsock.Launcher.Configuration;

/// <summary>
/// The cluster settings as a source gave them, before interpretation: <c>--cluster-bind</c> and
/// <c>--cluster-seeds</c>, or the YAML <c>cluster:</c> mapping (<c>bind:</c>, <c>seeds:</c> as a list or a
/// <c>+</c>-joined string). Each seed is its own value so a message can point at it.
/// </summary>
/// <param name="Where">Prefix for messages about the settings as a whole.</param>
internal sealed record RawCluster(string Where, RawValue? Bind, IReadOnlyList<RawValue>? Seeds, string BindName, string SeedsName);

/// <summary>
/// Interprets <see cref="RawCluster"/>: both settings or neither; every endpoint <c>HOST:PORT</c> (IPv6 in brackets),
/// a host that names one address (not a wildcard: the bind address is also the address the other nodes use), a port
/// 1 … 65535; at least one seed, none twice.
/// </summary>
internal static class ClusterSettingsBuilder
{
    public static ClusterSettings Build(RawCluster raw, string actorSystemName)
    {
        if (raw.Bind is null)
        {
            throw new ConfigurationException(
                $"{raw.Where}{raw.SeedsName} needs {raw.BindName} (the HOST:PORT this node's Akka.Remote endpoint listens on)");
        }

        if (raw.Seeds is null || raw.Seeds.Count == 0)
        {
            throw new ConfigurationException(
                $"{raw.Where}{raw.BindName} needs {raw.SeedsName} (the seed nodes, HOST:PORT joined by '+'; list this node itself to start a cluster)");
        }

        ClusterEndpoint bind = Endpoint(raw.Bind);
        var seeds = new List<ClusterEndpoint>(raw.Seeds.Count);
        foreach (RawValue seed in raw.Seeds)
        {
            ClusterEndpoint endpoint = Endpoint(seed);
            if (seeds.Contains(endpoint))
            {
                throw RawVm.Error(seed, $"seed {endpoint} is listed twice");
            }

            seeds.Add(endpoint);
        }

        return new ClusterSettings { Bind = bind, Seeds = seeds, ActorSystemName = actorSystemName };
    }

    /// <summary><c>+</c>-joined seeds as separate values (the flag, or a YAML string).</summary>
    public static IReadOnlyList<RawValue> SplitSeeds(RawValue value)
    {
        string[] elements = value.Text.Split('+');
        var seeds = new List<RawValue>(elements.Length);
        foreach (string element in elements)
        {
            if (element.Trim().Length == 0)
            {
                throw RawVm.Error(value, $"empty seed in '{value.Text}' (seeds are HOST:PORT joined by '+')");
            }

            seeds.Add(new RawValue(element.Trim(), value.Where));
        }

        return seeds;
    }

    internal static ClusterEndpoint Endpoint(RawValue value)
    {
        string text = value.Text.Trim();
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
        {
            throw RawVm.Error(value, $"'{text}' is not HOST:PORT");
        }

        string host = text[..colon];
        string portText = text[(colon + 1)..];
        if (host.StartsWith('['))
        {
            if (!host.EndsWith(']') || !IPAddress.TryParse(host[1..^1], out IPAddress? v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                throw RawVm.Error(value, $"'{host}' is not an IPv6 address in brackets");
            }

            host = host[1..^1];
        }
        else if (host.Contains(':', StringComparison.Ordinal))
        {
            throw RawVm.Error(value, $"'{text}': an IPv6 address goes in brackets, as [::1]:25520");
        }
        else if (Uri.CheckHostName(host) is not (UriHostNameType.Dns or UriHostNameType.IPv4))
        {
            throw RawVm.Error(value, $"'{host}' is not a host name or an IP address");
        }

        if (IPAddress.TryParse(host, out IPAddress? ip) && (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any)))
        {
            throw RawVm.Error(value,
                $"{host} is a wildcard address: give the one address the other nodes reach this node on (it is also the address it binds)");
        }

        if (!ushort.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out ushort port) || port == 0)
        {
            throw RawVm.Error(value, $"port '{portText}' is not a TCP port (1 … 65535)");
        }

        return new ClusterEndpoint(host, port);
    }
}
