using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Vsock.Testing.HostSide;

namespace Vsock.Bench;

/// <summary>The daemon's per-VM settings the benchmark passes; <see cref="Issue10"/> is what issue 10 measured with.</summary>
/// <param name="MetricsScrapeMs">Above 0: the daemon serves <c>--metrics-listen</c> on a free loopback port and is
/// scraped every that many milliseconds (<see cref="MetricsScraper"/>).</param>
internal sealed record DaemonSettings(int TxBufferSize, int QueueSize, int MetricsScrapeMs = 0)
{
    /// <summary>Above the 10,000 idle connections of the memory phase (the daemon's default max-connections is 4096).</summary>
    public const int MaxConnections = 65536;

    public static DaemonSettings Issue10 { get; } = new(262144, 256);
}

/// <summary>One VM of the daemon: its guest CID, vhost-user socket and host-side unix socket (uds-path).</summary>
internal sealed record DaemonVm(uint Cid, string Socket, string UdsPath);

/// <summary>
/// The real daemon as a separate process in a fresh temporary directory, with <c>VSOCK_STATS_FILE</c> set
/// so <see cref="SnapshotGcAsync"/> can read its GC counters (SIGUSR1). One VM is configured with the
/// top-level flags (<c>--guest-cid 3 --socket S --uds-path U --tx-buffer-size T --queue-size Q</c>),
/// several with one <c>--vm guest-cid=N,socket=...,uds-path=...,tx-buffer-size=T,queue-size=Q</c> each
/// (the launcher does not mix the two); see <see cref="Arguments"/>.
/// </summary>
internal sealed class DaemonProcess : IAsyncDisposable
{
    public const uint FirstCid = 3;

    private readonly Process _process;
    private readonly ConcurrentQueue<string> _stderr = new();
    private long _lastSequence;

    private DaemonProcess(Process process, string directory, IReadOnlyList<DaemonVm> vms)
    {
        _process = process;
        Directory = directory;
        Vms = vms;
    }

    public string Directory { get; }
    public IReadOnlyList<DaemonVm> Vms { get; }
    public string Socket => Vms[0].Socket;
    public string UdsPath => Vms[0].UdsPath;
    public string StatsFile => Path.Combine(Directory, "stats");
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public IReadOnlyCollection<string> Stderr => _stderr;

    /// <summary>Scraping the daemon's <c>/metrics</c> (null unless <see cref="DaemonSettings.MetricsScrapeMs"/> is set).</summary>
    public MetricsScraper? Scraper { get; private set; }

    /// <summary>The VMs of a daemon in <paramref name="directory"/>: CIDs from 3 up, vhost{cid}.sock and vm{cid}.vsock.</summary>
    public static IReadOnlyList<DaemonVm> Layout(string directory, int vmCount) =>
        [.. Enumerable.Range(0, vmCount).Select(i => (uint)(FirstCid + i))
            .Select(cid => new DaemonVm(cid, Path.Combine(directory, $"vhost{cid}.sock"), Path.Combine(directory, $"vm{cid}.vsock")))];

    /// <summary>The daemon's command line after the dll (also printed in the report, with <c>$D</c> for the directory).</summary>
    public static IReadOnlyList<string> Arguments(IReadOnlyList<DaemonVm> vms, DaemonSettings settings, string metricsEndpoint = "127.0.0.1:PORT")
    {
        var tx = settings.TxBufferSize.ToString(CultureInfo.InvariantCulture);
        var queue = settings.QueueSize.ToString(CultureInfo.InvariantCulture);
        var max = DaemonSettings.MaxConnections.ToString(CultureInfo.InvariantCulture);
        var args = new List<string>();
        if (vms.Count == 1)
        {
            args.AddRange(["--guest-cid", vms[0].Cid.ToString(CultureInfo.InvariantCulture), "--socket", vms[0].Socket, "--uds-path", vms[0].UdsPath,
                "--tx-buffer-size", tx, "--queue-size", queue, "--max-connections", max]);
        }
        else
        {
            foreach (var vm in vms)
                args.AddRange(["--vm", $"guest-cid={vm.Cid},socket={vm.Socket},uds-path={vm.UdsPath},tx-buffer-size={tx},queue-size={queue},max-connections={max}"]);
        }
        if (settings.MetricsScrapeMs > 0)
            args.AddRange(["--metrics-listen", metricsEndpoint]);
        args.AddRange(["--log-level", "warn"]);
        return args;
    }

    /// <summary>Starts the daemon with the CPU mask <paramref name="cpuMask"/> and waits for every VM's vhost-user socket.</summary>
    public static async Task<DaemonProcess> StartAsync(string launcherDll, ulong cpuMask, DaemonSettings settings, int vmCount = 1)
    {
        var directory = System.IO.Directory.CreateTempSubdirectory("vbench-").FullName;
        var vms = Layout(directory, vmCount);
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(launcherDll);
        var metricsEndpoint = settings.MetricsScrapeMs > 0 ? $"127.0.0.1:{FreePorts.Take(1)[0]}" : "";
        foreach (var arg in Arguments(vms, settings, metricsEndpoint))
            start.ArgumentList.Add(arg);
        start.Environment["VSOCK_STATS_FILE"] = Path.Combine(directory, "stats");
        start.Environment.Remove("RUST_LOG");
        start.Environment.Remove("VHOST_DEVICE_VSOCK_LOG");

        var process = StartWithAffinity(start, cpuMask);
        var daemon = new DaemonProcess(process, directory, vms);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                daemon._stderr.Enqueue(e.Data);
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!vms.All(vm => File.Exists(vm.Socket)))
        {
            if (process.HasExited)
            {
                var why = $"the daemon exited with {process.ExitCode}: {string.Join(" | ", daemon._stderr)}";
                await daemon.DisposeAsync();
                throw new InvalidOperationException(why);
            }
            if (DateTime.UtcNow > deadline)
            {
                await daemon.DisposeAsync();
                throw new TimeoutException("the daemon did not create its vhost-user socket(s) within 30 s");
            }
            await Task.Delay(20);
        }
        if (settings.MetricsScrapeMs > 0)
            daemon.Scraper = new MetricsScraper($"http://{metricsEndpoint}/metrics", TimeSpan.FromMilliseconds(settings.MetricsScrapeMs));
        return daemon;
    }

    /// <summary>
    /// fork() copies the calling thread's CPU mask, and every thread the child makes inherits it: so the
    /// mask is set on this thread around Process.Start, no taskset needed, and restored after.
    /// </summary>
    private static Process StartWithAffinity(ProcessStartInfo start, ulong cpuMask)
    {
        // Synchronous: a managed thread is one OS thread for the whole method.
        var self = Native.gettid();
        var previous = Native.GetAffinity(self);
        Native.SetAffinity(self, cpuMask);
        try
        {
            return Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        }
        finally
        {
            Native.SetAffinity(self, previous);
        }
    }

    /// <summary>VmRSS from /proc/PID/status, in bytes.</summary>
    public long ReadRss() => ReadStatusKb("VmRSS") * 1024;

    public long ReadStatusKb(string field)
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }
        throw new InvalidDataException($"no {field} in /proc/{Pid}/status");
    }

    public string ReadStatusText(string field) =>
        File.ReadLines($"/proc/{Pid}/status").FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal))?[(field.Length + 1)..].Trim() ?? "?";

    /// <summary>The daemon's "Max open files" soft limit from /proc/PID/limits.</summary>
    public long ReadOpenFileLimit()
    {
        var line = File.ReadLines($"/proc/{Pid}/limits").First(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        var fields = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(fields[0], CultureInfo.InvariantCulture);
    }

    public int CountOpenFds() => System.IO.Directory.GetFiles($"/proc/{Pid}/fd").Length;

    /// <summary>Asks the daemon for its GC counters (SIGUSR1) and waits for the new snapshot.</summary>
    public async Task<GcSnapshot> SnapshotGcAsync()
    {
        var wanted = _lastSequence + 1;
        Native.Kill(Pid, Native.SigUsr1);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (File.Exists(StatsFile))
            {
                var values = File.ReadAllLines(StatsFile)
                    .Select(l => l.Split(' '))
                    .Where(p => p.Length == 2)
                    .ToDictionary(p => p[0], p => long.Parse(p[1], CultureInfo.InvariantCulture));
                if (values.TryGetValue("sequence", out var sequence) && sequence >= wanted)
                {
                    _lastSequence = sequence;
                    return new GcSnapshot(values["gen0"], values["gen1"], values["gen2"], values["allocated_bytes"], values["heap_bytes"],
                        values.Where(v => v.Key.StartsWith("counter.", StringComparison.Ordinal)).ToDictionary(v => v.Key["counter.".Length..], v => v.Value));
                }
            }
            await Task.Delay(10);
        }
        throw new TimeoutException("the daemon did not write its stats file (is VSOCK_STATS_FILE supported by this build?)");
    }

    public async ValueTask DisposeAsync()
    {
        if (Scraper is { } scraper)
            await scraper.DisposeAsync();
        if (!_process.HasExited)
        {
            Native.Kill(Pid, Native.SigTerm);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
            }
        }
        _process.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal readonly record struct GcSnapshot(long Gen0, long Gen1, long Gen2, long AllocatedBytes, long HeapBytes,
    IReadOnlyDictionary<string, long>? Counters = null)
{
    public static GcSnapshot operator -(GcSnapshot a, GcSnapshot b) =>
        new(a.Gen0 - b.Gen0, a.Gen1 - b.Gen1, a.Gen2 - b.Gen2, a.AllocatedBytes - b.AllocatedBytes, a.HeapBytes - b.HeapBytes);
}
