using System.CommandLine;
using System.CommandLine.Invocation;
using System.Reflection;
using Vsock.Actors.Settings;

namespace Vsock.Launcher.Configuration;

/// <summary>
/// The System.CommandLine definition: the reference's flags (all long, no short forms except
/// <c>-h</c> and <c>-V</c>), plus <c>--log-level</c>. Every device value is taken as a string and
/// interpreted by <see cref="VmSettingsBuilder"/>, so a bad number on a flag gets the same message
/// as in <c>--vm</c> or YAML, and "was this flag given" is a plain presence test.
/// </summary>
internal sealed class CommandLine
{
    public const string Name = "vhost-device-vsock";

    public CommandLine()
    {
        DeviceOptions = new Dictionary<VmKey, Option<string>>
        {
            [VmKey.GuestCid] = Value(VmKey.GuestCid, "CID",
                $"Context ID of the guest (default: {VmSettings.DefaultGuestCid}; 0, 1, 2 and 4294967295 are reserved)"),
            [VmKey.Socket] = Value(VmKey.Socket, "PATH",
                "Unix socket to create for the VMM's vhost-user connection (required without --vm/--config)"),
            [VmKey.UdsPath] = Value(VmKey.UdsPath, "PATH",
                "Unix socket host applications connect to (\"CONNECT <port>\\n\"); guest connections go to PATH_<port>"),
            [VmKey.ForwardCid] = Value(VmKey.ForwardCid, "CID",
                "Vsock backend: forward the guest's connections to this host vsock CID (instead of --uds-path)"),
            [VmKey.ForwardListen] = Value(VmKey.ForwardListen, "PORTS",
                "Vsock backend: host vsock ports to listen on and forward to the guest, joined by '+' (e.g. 9001+9002)"),
            [VmKey.ForwardListenSeqpacket] = Value(VmKey.ForwardListenSeqpacket, "PORTS",
                "Vsock backend: as --forward-listen for SOCK_SEQPACKET (a host vsock port has one socket type)"),
            [VmKey.TxBufferSize] = Value(VmKey.TxBufferSize, "BYTES",
                $"Per-connection buffer for guest-to-host data (default: {VmSettings.DefaultTxBufferSize}, at most {VmSettingsValidator.MaxTxBufferSize})"),
            [VmKey.QueueSize] = Value(VmKey.QueueSize, "N",
                $"Largest virtqueue the VMM may configure: a power of two up to {VmSettingsValidator.MaxQueueSize} (default: {VmSettings.DefaultQueueSize})"),
            [VmKey.Groups] = Value(VmKey.Groups, "NAMES",
                $"Sibling groups joined by '+'; VMs sharing a group can connect to each other (default: {VmSettings.DefaultGroup})"),
            [VmKey.MaxConnections] = Value(VmKey.MaxConnections, "N",
                $"Connections the VM may hold at once; beyond it a guest REQUEST is reset and a host client closed (default: {VmSettings.DefaultMaxConnections}, at most {VmSettingsValidator.MaxMaxConnections})"),
            [VmKey.CloseTimeoutMs] = Value(VmKey.CloseTimeoutMs, "MS",
                $"Milliseconds the guest has to close a stream the host side closed before it is reset; 0 = wait for ever (default: {(long)VmSettings.DefaultCloseTimeout.TotalMilliseconds})"),
        };

        Vm = new Option<string[]>("--vm")
        {
            HelpName = "KEY=VALUE,...",
            Description =
                "One device per occurrence, repeatable: guest-cid=, socket=, uds-path= or forward-cid=, forward-listen=, forward-listen-seqpacket=, " +
                "tx-buffer-size=, queue-size=, groups=, max-connections=, close-timeout-ms= ('_' spellings accepted). Not with --config or the flags above",
        };
        Config = new Option<string>("--config")
        {
            HelpName = "FILE",
            Description = "YAML file with a 'vms:' list of devices (keys as in --vm, '_' or '-'). Not with --vm or the device flags",
        };
        ClusterBind = new Option<string>("--cluster-bind")
        {
            HelpName = "HOST:PORT",
            Description =
                "Make this daemon a cluster node: its Akka.Remote endpoint listens on HOST:PORT (IPv6 as [addr]:port), " +
                "which is also the address the other nodes use. VMs of every node that share a group reach each other. Needs --cluster-seeds",
        };
        ClusterSeeds = new Option<string>("--cluster-seeds")
        {
            HelpName = "HOST:PORT+...",
            Description = "The cluster's seed nodes joined by '+', the same list on every node (it may include this node; the first seed starts the cluster)",
        };
        LogLevel = new Option<string>("--log-level")
        {
            HelpName = "LEVEL",
            Description =
                $"trace, debug, info, warn, error or off (default: ${LogLevelResolver.OwnVariable}, then ${LogLevelResolver.RustVariable}, then info)",
        };

        MetricsListen = new Option<string>("--metrics-listen")
        {
            HelpName = "HOST:PORT",
            Description =
                "Serve Prometheus metrics at http://HOST:PORT/metrics (no authentication: bind a trusted address such as 127.0.0.1). " +
                "Not with the YAML file's metrics_listen",
        };

        Root = new RootCommand("vhost-user vsock device: connects QEMU guests' virtio-vsock to host unix sockets or host vsock.");

        // The reference (clap) has neither response files (@file) nor [directives]; a socket path
        // starting with '@' or '[' must stay a path.
        Root.Directives.Clear();
        for (int i = Root.Options.Count - 1; i >= 0; i--)
        {
            if (Root.Options[i] is VersionOption)
            {
                Root.Options.RemoveAt(i);
            }
        }

        // clap prints "<name> <version>"; System.CommandLine's own action prints only the version.
        Root.Options.Add(new VersionOption("--version", "-V") { Action = new PrintVersion() });
        foreach (Option<string> option in DeviceOptions.Values)
        {
            Root.Options.Add(option);
        }

        Root.Options.Add(Vm);
        Root.Options.Add(Config);
        Root.Options.Add(ClusterBind);
        Root.Options.Add(ClusterSeeds);
        Root.Options.Add(LogLevel);
        Root.Options.Add(MetricsListen);
    }

    public RootCommand Root { get; }

    /// <summary>The top-level per-device flags, which conflict with <c>--vm</c> and <c>--config</c>.</summary>
    public IReadOnlyDictionary<VmKey, Option<string>> DeviceOptions { get; }

    public Option<string[]> Vm { get; }

    public Option<string> Config { get; }

    public Option<string> LogLevel { get; }

    public Option<string> MetricsListen { get; }

    /// <summary>The cluster flags: allowed with every source of devices.</summary>
    public Option<string> ClusterBind { get; }

    public Option<string> ClusterSeeds { get; }

    public static ParserConfiguration ParserConfiguration { get; } = new() { ResponseFileTokenReplacer = null };

    public static string Version =>
        typeof(CommandLine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(CommandLine).Assembly.GetName().Version?.ToString()
        ?? "unknown";

    private static Option<string> Value(VmKey key, string helpName, string description) =>
        new(VmKeys.Name(key, KeyStyle.Flag)) { HelpName = helpName, Description = description };

    private sealed class PrintVersion : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            parseResult.InvocationConfiguration.Output.WriteLine($"{Name} {Version}");
            return 0;
        }
    }
}
