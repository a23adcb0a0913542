using System.Globalization;

namespace Vsock.Bench;

/// <summary>Command line of the benchmark; defaults are the documented run (docs/BENCHMARKS.md).</summary>
internal sealed record BenchOptions
{
    public required string LauncherDll { get; init; }
    public long CellBytes { get; init; } = 256L << 20;
    public long GcBytes { get; init; } = 1L << 30;
    public int IdleConnections { get; init; } = 10_000;
    public int LatencySamples { get; init; } = 20_000;
    public int RateConnections { get; init; } = 2_000;
    public bool Pinned { get; init; } = true;
    /// <summary>How long the synthetic guest's driver thread polls before it blocks (0: it blocks at once).</summary>
    public int GuestPollMicroseconds { get; init; }
    /// <summary>The synthetic guest asks for TX interrupts only when it needs TX room (SyntheticGuestOptions.LazyTxReclaim).</summary>
    public bool LazyTxReclaim { get; init; } = true;
    /// <summary>More daemon arguments (e.g. <c>--tx-buffer-size 262144</c>); the defaults are the documented run.</summary>
    public IReadOnlyList<string> DaemonArguments { get; init; } = [];
    public bool Unpinned { get; init; } = true;
    public IReadOnlySet<string> Phases { get; init; } = AllPhases;

    public static readonly IReadOnlySet<string> AllPhases = new HashSet<string> { "reference", "throughput", "latency", "rate", "memory", "gc" };

    public const string Usage = """
        usage: Vsock.Bench [--daemon PATH/vhost-device-vsock.dll] [--cell-mib 256] [--gc-mib 1024]
                           [--idle 10000] [--latency 20000] [--rate 2000] [--placement both|pinned|unpinned]
                           [--guest-poll-us 0] [--guest-tx-interrupts lazy|always] [--tx-buffer-size BYTES (daemon)]
                           [--only reference,throughput,latency,rate,memory,gc] [--quick]
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
                "--tx-buffer-size" => options with { DaemonArguments = [.. options.DaemonArguments, "--tx-buffer-size", NextInt().ToString(CultureInfo.InvariantCulture)] },
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
                    CellBytes = 32L << 20, GcBytes = 128L << 20, IdleConnections = 1000, LatencySamples = 2000, RateConnections = 300,
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
    private static string FindLauncher()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "VsockActors.sln")))
                return Path.Combine(dir.FullName, "src", "Vsock.Launcher", "bin", "Release", "net10.0", "vhost-device-vsock.dll");
        }
        return "vhost-device-vsock.dll";
    }
}
