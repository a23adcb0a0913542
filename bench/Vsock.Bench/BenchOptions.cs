using System.Globalization;

namespace Vsock.Bench;

/// <summary>Command line of the benchmark; defaults are the documented run (docs/BENCHMARKS.md).</summary>
internal sealed record BenchOptions
{
    public required string LauncherDll { get; init; }
    /// <summary>Bytes per throughput cell (and per multi-VM row), split over its streams: issue 10 measured 512 MiB per case.</summary>
    public long CellBytes { get; init; } = 512L << 20;
    public long GcBytes { get; init; } = 1L << 30;
    public int IdleConnections { get; init; } = 10_000;
    public int LatencySamples { get; init; } = 20_000;
    /// <summary>Connections per set-up measurement: a second's worth at the 20,000/s target.</summary>
    public int RateConnections { get; init; } = 20_000;
    public bool Pinned { get; init; } = true;
    /// <summary>How long the synthetic guest's driver thread polls before it blocks (0: it blocks at once).</summary>
    public int GuestPollMicroseconds { get; init; }
    /// <summary>
    /// The buf_alloc the synthetic guest advertises (Linux's default, 256 KiB; an application can change it with
    /// SO_VM_SOCKETS_BUFFER_SIZE): the most a stream may have in flight toward the guest.
    /// </summary>
    public uint GuestBufAlloc { get; init; } = 256 * 1024;
    /// <summary>The synthetic guest asks for TX interrupts only when it needs TX room (SyntheticGuestOptions.LazyTxReclaim).</summary>
    public bool LazyTxReclaim { get; init; } = true;
    /// <summary>The daemon's <c>--tx-buffer-size</c> and <c>--queue-size</c>; the defaults are issue 10's run.</summary>
    public DaemonSettings Daemon { get; init; } = DaemonSettings.Issue10;
    public bool Unpinned { get; init; } = true;
    public IReadOnlySet<string> Phases { get; init; } = AllPhases;

    public static readonly IReadOnlySet<string> AllPhases = new HashSet<string> { "reference", "throughput", "latency", "rate", "multivm", "memory", "gc", "seqpacket" };

    public const string Usage = """
        usage: Vsock.Bench [--daemon PATH/vhost-device-vsock.dll] [--cell-mib 512] [--gc-mib 1024]
                           [--idle 10000] [--latency 20000] [--rate 20000] [--placement both|pinned|unpinned]
                           [--guest-poll-us 0] [--guest-tx-interrupts lazy|always] [--guest-buf-alloc 262144]
                           [--tx-buffer-size 262144] [--queue-size 256] (both passed to the daemon)
                           [--metrics-scrape-ms 0] (above 0: the daemon gets --metrics-listen, scraped that often)
                           [--only reference,throughput,latency,rate,multivm,memory,gc,seqpacket] [--quick]
               Vsock.Bench --summarize REPORT.md... (a table of every run's figures, for scripts/bench-runs.sh)
        """;

    public static BenchOptions Parse(string[] args)
    {
        var options = new BenchOptions { LauncherDll = FindLauncher() };
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value\n{Usage}");
            int NextInt() => int.Parse(Next(), CultureInfo.InvariantCulture);
            options = args[i] switch
            {
                "--daemon" => options with { LauncherDll = Path.GetFullPath(Next()) },
                "--cell-mib" => options with { CellBytes = (long)NextInt() << 20 },
                "--gc-mib" => options with { GcBytes = (long)NextInt() << 20 },
                "--idle" => options with { IdleConnections = NextInt() },
                "--latency" => options with { LatencySamples = NextInt() },
                "--rate" => options with { RateConnections = NextInt() },
                "--guest-poll-us" => options with { GuestPollMicroseconds = NextInt() },
                "--guest-buf-alloc" => options with { GuestBufAlloc = checked((uint)NextInt()) },
                "--tx-buffer-size" => options with { Daemon = options.Daemon with { TxBufferSize = NextInt() } },
                "--queue-size" => options with { Daemon = options.Daemon with { QueueSize = NextInt() } },
                "--metrics-scrape-ms" => options with { Daemon = options.Daemon with { MetricsScrapeMs = NextInt() } },
                "--guest-tx-interrupts" => Next() switch
                {
                    "lazy" => options with { LazyTxReclaim = true },
                    "always" => options with { LazyTxReclaim = false },
                    var other => throw new ArgumentException($"unknown TX interrupt mode {other}\n{Usage}"),
                },
                "--placement" => Next() switch
                {
                    "both" => options with { Pinned = true, Unpinned = true },
                    "pinned" => options with { Pinned = true, Unpinned = false },
                    "unpinned" => options with { Pinned = false, Unpinned = true },
                    var other => throw new ArgumentException($"unknown placement {other}\n{Usage}"),
                },
                "--only" => options with { Phases = Next().Split(',').ToHashSet() },
                "--quick" => options with
                {
                    CellBytes = 32L << 20,
                    GcBytes = 128L << 20,
                    IdleConnections = 1000,
                    LatencySamples = 2000,
                    RateConnections = 2000,
                },
                _ => throw new ArgumentException($"unknown argument {args[i]}\n{Usage}"),
            };
        }
        if (!File.Exists(options.LauncherDll))
            throw new ArgumentException($"no daemon at {options.LauncherDll}: build src/Vsock.Launcher -c Release or pass --daemon\n{Usage}");
        var unknown = options.Phases.Except(AllPhases).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"unknown phase(s) {string.Join(",", unknown)}\n{Usage}");
        return options;
    }

    /// <summary>The Release launcher of the repository this benchmark was built in.</summary>
    internal static string FindLauncher()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "VsockActors.sln")))
                return Path.Combine(dir.FullName, "src", "Vsock.Launcher", "bin", "Release", "net10.0", "vhost-device-vsock.dll");
        }
        return "vhost-device-vsock.dll";
    }
}
