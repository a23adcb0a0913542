using System.Globalization;
using System.Net;

namespace Vsock.Launcher.Configuration;

/// <summary>
/// <c>--metrics-listen HOST:PORT</c> (YAML <c>metrics_listen</c>): where the Prometheus endpoint listens. HOST is an
/// IPv4 address, a bracketed IPv6 address (<c>[::1]:9100</c>) or <c>localhost</c> (127.0.0.1); no other name is
/// looked up, so what is bound is what was written. PORT 0 takes a free port (the daemon logs which).
/// </summary>
internal static class MetricsListenParser
{
    public static IPEndPoint Parse(RawValue value)
    {
        string text = value.Text.Trim();
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
        {
            throw Error(value, $"'{text}' is not HOST:PORT (e.g. 127.0.0.1:9100 or [::1]:9100)");
        }

        string host = text[..colon];
        string port = text[(colon + 1)..];
        if (!ushort.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out ushort number))
        {
            throw Error(value, $"port '{port}' is not a number from 0 to 65535");
        }

        IPAddress? address;
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            address = IPAddress.Loopback;
        }
        else if (host.StartsWith('[') && host.EndsWith(']'))
        {
            address = IPAddress.TryParse(host[1..^1], out IPAddress? v6) && v6.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? v6 : null;
        }
        else
        {
            address = IPAddress.TryParse(host, out IPAddress? v4) && v4.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? v4 : null;
        }

        return address is null
            ? throw Error(value, $"'{host}' is not an IPv4 address, a bracketed IPv6 address or localhost")
            : new IPEndPoint(address, number);
    }

    private static ConfigurationException Error(RawValue value, string problem) => RawVm.Error(value, problem);
}
