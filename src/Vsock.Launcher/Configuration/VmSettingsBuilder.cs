using System.Globalization;
using Vsock.Actors.Settings;

namespace Vsock.Launcher.Configuration;

/// <summary>
/// Interprets a <see cref="RawVm"/> into <see cref="VmSettings"/>, whichever source it came from,
/// so that flags, <c>--vm</c> and YAML share one set of defaults and rules.
/// </summary>
internal static class VmSettingsBuilder
{
    public static VmSettings Build(RawVm vm)
    {
        Dictionary<VmKey, RawValue> values = vm.Values;
        RawValue? socket = values.GetValueOrDefault(VmKey.Socket);
        RawValue? udsPath = values.GetValueOrDefault(VmKey.UdsPath);
        RawValue? forwardCid = values.GetValueOrDefault(VmKey.ForwardCid);
        RawValue? forwardListen = values.GetValueOrDefault(VmKey.ForwardListen);
        RawValue? forwardListenSeqpacket = values.GetValueOrDefault(VmKey.ForwardListenSeqpacket);

        if (socket is null)
        {
            throw vm.Error($"missing {vm.Name(VmKey.Socket)} (the vhost-user socket to listen on for the VMM)");
        }

        if (udsPath is not null && forwardCid is not null)
        {
            throw vm.Error($"{vm.Name(VmKey.UdsPath)} and {vm.Name(VmKey.ForwardCid)} cannot both be given (a device has one backend)");
        }

        if (udsPath is null && forwardCid is null)
        {
            throw vm.Error($"missing {vm.Name(VmKey.UdsPath)} or {vm.Name(VmKey.ForwardCid)} (a device needs one backend)");
        }

        foreach (VmKey key in new[] { VmKey.ForwardListen, VmKey.ForwardListenSeqpacket })
        {
            if (values.ContainsKey(key) && udsPath is not null)
            {
                // The reference silently ignores it; a user who wrote it expects ports to be listened on.
                throw vm.Error(
                    $"{vm.Name(key)} belongs to the vsock backend ({vm.Name(VmKey.ForwardCid)}); " +
                    $"it cannot be used with {vm.Name(VmKey.UdsPath)}");
            }
        }

        var settings = new VmSettings { Socket = Path(socket) };
        if (values.TryGetValue(VmKey.GuestCid, out RawValue? cid))
        {
            settings = settings with { GuestCid = Checked(cid, Unsigned(cid), VmSettingsValidator.GuestCidProblem) };
        }

        if (udsPath is not null)
        {
            settings = settings with { UdsPath = Path(udsPath) };
        }
        else
        {
            ulong forward = Checked(forwardCid!, Unsigned(forwardCid!), VmSettingsValidator.ForwardCidProblem);
            settings = settings with
            {
                ForwardCid = (uint)forward,
                ForwardListen = forwardListen is null ? [] : Ports(forwardListen),
                ForwardListenSeqpacket = forwardListenSeqpacket is null ? [] : Ports(forwardListenSeqpacket),
            };
        }

        if (values.TryGetValue(VmKey.TxBufferSize, out RawValue? tx))
        {
            settings = settings with { TxBufferSize = (uint)Checked(tx, Unsigned(tx), VmSettingsValidator.TxBufferSizeProblem) };
        }

        if (values.TryGetValue(VmKey.QueueSize, out RawValue? queue))
        {
            settings = settings with { QueueSize = (int)Checked(queue, Unsigned(queue), VmSettingsValidator.QueueSizeProblem) };
        }

        if (values.TryGetValue(VmKey.MaxConnections, out RawValue? max))
        {
            settings = settings with { MaxConnections = (int)Checked(max, Unsigned(max), VmSettingsValidator.MaxConnectionsProblem) };
        }

        if (values.TryGetValue(VmKey.CloseTimeoutMs, out RawValue? close))
        {
            ulong ms = Checked(close, Unsigned(close), VmSettingsValidator.CloseTimeoutProblem);
            settings = settings with { CloseTimeout = TimeSpan.FromMilliseconds(ms) };
        }

        if (values.TryGetValue(VmKey.Groups, out RawValue? groups))
        {
            settings = settings with { Groups = Groups(groups) };
        }

        return settings;
    }

    /// <summary>Decimal digits only, as Rust's <c>str::parse::&lt;u64&gt;</c> without the sign.</summary>
    internal static ulong Unsigned(RawValue value)
    {
        if (value.IsQuotedString)
        {
            throw RawVm.Error(value, $"expected an integer, not the quoted string \"{value.Text}\"");
        }

        if (ulong.TryParse(value.Text, NumberStyles.None, CultureInfo.InvariantCulture, out ulong result))
        {
            return result;
        }

        bool digits = value.Text.Length > 0 && value.Text.All(char.IsAsciiDigit);
        throw RawVm.Error(value, digits
            ? $"'{value.Text}' is too large"
            : $"'{value.Text}' is not an unsigned integer");
    }

    private static ulong Checked(RawValue value, ulong number, Func<ulong, string?> rule) =>
        rule(number) is { } problem ? throw RawVm.Error(value, problem) : number;

    /// <summary>Trimmed, as the reference trims the socket and uds paths it reads from flags and YAML.</summary>
    private static string Path(RawValue value)
    {
        string path = value.Text.Trim();
        return VmSettingsValidator.SocketPathProblem(path) is { } problem ? throw RawVm.Error(value, problem) : path;
    }

    /// <summary><c>9001+9002</c>: every element a u32 port, none empty, none twice.</summary>
    private static uint[] Ports(RawValue value)
    {
        string[] elements = value.Text.Split('+');
        var ports = new List<uint>(elements.Length);
        foreach (string element in elements)
        {
            if (element.Length == 0)
            {
                throw RawVm.Error(value, $"empty port in '{value.Text}' (ports are joined by '+')");
            }

            // The list is text even when quoted in YAML, so each element is parsed as plain digits.
            ulong port = Checked(value, Unsigned(new RawValue(element, value.Where)), VmSettingsValidator.PortProblem);
            if (ports.Contains((uint)port))
            {
                throw RawVm.Error(value, $"port {port} is listed twice");
            }

            ports.Add((uint)port);
        }

        return [.. ports];
    }

    /// <summary><c>group1+group2</c>: trimmed elements, none blank; a repeated name counts once.</summary>
    private static string[] Groups(RawValue value)
    {
        var groups = new List<string>();
        foreach (string element in value.Text.Split('+'))
        {
            string name = element.Trim();
            if (name.Length == 0)
            {
                throw RawVm.Error(value, $"empty group name in '{value.Text}' (groups are joined by '+')");
            }

            if (!groups.Contains(name, StringComparer.Ordinal))
            {
                groups.Add(name);
            }
        }

        return [.. groups];
    }
}
