using System.Globalization;

namespace Vsock.Bench.Soak;

/// <summary>
/// The soak runs behind <c>scripts/soak.sh</c> (docs/RELIABILITY.md): long runs against the daemon as its own
/// process, each printing a Markdown report of what it did and the daemon's fds, RSS and managed heap.
/// <code>
/// Vsock.Bench --soak streams [--streams 1000] [--mib 1] [--rounds 3]
/// Vsock.Bench --soak vmm-kill [--cycles 1000] [--every 100]
/// </code>
/// </summary>
internal static class SoakRunner
{
    /// <summary>The daemon's own defaults (tx-buffer-size 65536, queue-size 1024), not the benchmark's.</summary>
    public static readonly DaemonSettings Daemon = new(65536, 1024);

    public const string Usage = """
        usage: Vsock.Bench --soak streams [--streams 1000] [--mib 1] [--rounds 3] [--daemon PATH/vhost-device-vsock.dll]
               Vsock.Bench --soak vmm-kill [--cycles 1000] [--every 100] [--daemon PATH/vhost-device-vsock.dll]
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }
        var launcher = BenchOptions.FindLauncher();
        int streams = 1000, mib = 1, rounds = 3, cycles = 1000, every = 100;
        for (var i = 1; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int NextInt() => int.Parse(Next(), CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--streams": streams = NextInt(); break;
                case "--mib": mib = NextInt(); break;
                case "--rounds": rounds = NextInt(); break;
                case "--cycles": cycles = NextInt(); break;
                case "--every": every = NextInt(); break;
                case "--daemon": launcher = Path.GetFullPath(Next()); break;
                default:
                    Console.Error.WriteLine($"unknown argument {args[i]}\n{Usage}");
                    return 2;
            }
        }
        if (!File.Exists(launcher))
        {
            Console.Error.WriteLine($"no daemon at {launcher}: build src/Vsock.Launcher -c Release or pass --daemon");
            return 2;
        }
        Native.RaiseOpenFileLimit();
        var report = Console.Out;
        report.WriteLine($"# soak {string.Join(' ', args)} ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} CPUs, .NET {Environment.Version})");
        report.WriteLine();
        return args[0] switch
        {
            "streams" => await StreamsSoak.RunAsync(launcher, streams, (long)mib << 20, rounds, report),
            "vmm-kill" => await VmmKillSoak.RunAsync(launcher, cycles, every, report),
            _ => Fail($"unknown soak {args[0]}\n{Usage}"),
        };
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine(message);
        return 2;
    }

    /// <summary>What each of the daemon's fds is (readlink of /proc/PID/fd/N), for "what is still open".</summary>
    public static List<string> FdTargets(DaemonProcess daemon) =>
        [.. Directory.GetFiles($"/proc/{daemon.Pid}/fd").Select(f => new FileInfo(f).LinkTarget ?? "?")
            .Select(t => t.StartsWith("socket:", StringComparison.Ordinal) ? "socket" : t.StartsWith("anon_inode:", StringComparison.Ordinal) ? t : t.StartsWith("pipe:", StringComparison.Ordinal) ? "pipe" : t)];

    /// <summary>"2 × socket, 1 × anon_inode:[eventfd]": what <paramref name="after"/> has beyond <paramref name="before"/>.</summary>
    public static string Difference(List<string> before, List<string> after)
    {
        var left = before.ToList();
        var extra = new List<string>();
        foreach (var target in after)
        {
            if (!left.Remove(target))
                extra.Add(target);
        }
        return extra.Count == 0 ? "none" : string.Join(", ", extra.GroupBy(t => t).Select(g => $"{g.Count()} × {g.Key}"));
    }

    /// <summary>The daemon's log lines grouped by message (time stamps dropped), most frequent first.</summary>
    public static IEnumerable<string> LogSummary(DaemonProcess daemon) =>
        daemon.Stderr.Select(l => l.IndexOf("] ", StringComparison.Ordinal) is var i and >= 0 ? l[(i + 2)..] : l)
            .Select(m => System.Text.RegularExpressions.Regex.Replace(m, @"\d+", "N"))
            .GroupBy(m => m).OrderByDescending(g => g.Count()).Select(g => $"{g.Count()} × {g.Key}");

    public static async Task<DaemonSample> SampleAsync(DaemonProcess daemon)
    {
        var gc = await daemon.SnapshotGcAsync();
        return new DaemonSample(daemon.CountOpenFds(), daemon.ReadRss(), gc.HeapBytes);
    }
}

internal readonly record struct DaemonSample(int Fds, long RssBytes, long HeapBytes)
{
    public string Row(string when) =>
        string.Create(CultureInfo.InvariantCulture, $"| {when} | {Fds} | {RssBytes / 1048576.0:0.0} | {HeapBytes / 1048576.0:0.0} |");
}
