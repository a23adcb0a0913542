using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace Vsock.Bench;

/// <summary>
/// The real daemon as a separate process: <c>dotnet vhost-device-vsock.dll --guest-cid 3 --socket S
/// --uds-path U --log-level warn</c> in a fresh temporary directory, with <c>VSOCK_STATS_FILE</c> set
/// so <see cref="SnapshotGcAsync"/> can read its GC counters (SIGUSR1).
/// </summary>
internal sealed class DaemonProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _stderr = new();
    private long _lastSequence;

    private DaemonProcess(Process process, string directory)
    {
        _process = process;
        Directory = directory;
    }

    public string Directory { get; }
    public string Socket => Path.Combine(Directory, "vhost.sock");
    public string UdsPath => Path.Combine(Directory, "vm3.vsock");
    public string StatsFile => Path.Combine(Directory, "stats");
    public int Pid => _process.Id;
    public IReadOnlyCollection<string> Stderr => _stderr;

    /// <summary>Starts the daemon with the CPU mask <paramref name="cpuMask"/> and waits for its vhost-user socket.</summary>
    public static async Task<DaemonProcess> StartAsync(string launcherDll, ulong cpuMask, IReadOnlyList<string> extraArguments)
    {
        var directory = System.IO.Directory.CreateTempSubdirectory("vbench-").FullName;
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(launcherDll);
        foreach (var arg in new[] { "--guest-cid", "3", "--socket", Path.Combine(directory, "vhost.sock"),
                     "--uds-path", Path.Combine(directory, "vm3.vsock"), "--log-level", "warn" })
            start.ArgumentList.Add(arg);
        foreach (var arg in extraArguments)
            start.ArgumentList.Add(arg);
        start.Environment["VSOCK_STATS_FILE"] = Path.Combine(directory, "stats");
        start.Environment.Remove("RUST_LOG");
        start.Environment.Remove("VHOST_DEVICE_VSOCK_LOG");

        var process = StartWithAffinity(start, cpuMask);
        var daemon = new DaemonProcess(process, directory);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                daemon._stderr.Enqueue(e.Data);
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!File.Exists(daemon.Socket))
        {
            if (process.HasExited)
                throw new InvalidOperationException($"the daemon exited with {process.ExitCode}: {string.Join(" | ", daemon._stderr)}");
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("the daemon did not create its vhost-user socket within 30 s");
            await Task.Delay(20);
        }
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

    /// <summary>User + system CPU time of the daemon so far (/proc/PID/stat, clock ticks of 10 ms).</summary>
    public TimeSpan ReadCpuTime()
    {
        var stat = File.ReadAllText($"/proc/{Pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // After "pid (comm) ": field 3 is state, so utime (14) and stime (15) are at 11 and 12.
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return TimeSpan.FromMilliseconds(ticks * 10);
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
                    return new GcSnapshot(values["gen0"], values["gen1"], values["gen2"], values["allocated_bytes"], values["heap_bytes"]);
                }
            }
            await Task.Delay(10);
        }
        throw new TimeoutException("the daemon did not write its stats file (is VSOCK_STATS_FILE supported by this build?)");
    }

    public async ValueTask DisposeAsync()
    {
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

internal readonly record struct GcSnapshot(long Gen0, long Gen1, long Gen2, long AllocatedBytes, long HeapBytes)
{
    public static GcSnapshot operator -(GcSnapshot a, GcSnapshot b) =>
        new(a.Gen0 - b.Gen0, a.Gen1 - b.Gen1, a.Gen2 - b.Gen2, a.AllocatedBytes - b.AllocatedBytes, a.HeapBytes - b.HeapBytes);
}
