using System.Diagnostics;

namespace Vsock.Launcher.Tests;

/// <summary>The built launcher as a user runs it: <c>dotnet vhost-device-vsock.dll ...</c>.</summary>
public sealed class LauncherProcessTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private static readonly string LauncherDll = Path.Combine(AppContext.BaseDirectory, "vhost-device-vsock.dll");

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static Process Start(params string[] args) => Start(new Dictionary<string, string>(), args);

    private static Process Start(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } path && File.Exists(path) ? path : "dotnet";
        var start = new ProcessStartInfo(host)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(LauncherDll);
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // The machine's logging settings must not change what the launcher prints.
        start.Environment.Remove("RUST_LOG");
        start.Environment.Remove("VHOST_DEVICE_VSOCK_LOG");
        start.Environment.Remove("VSOCK_STATS_FILE");
        foreach ((string name, string value) in environment)
        {
            start.Environment[name] = value;
        }

        return Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
    }

    private static (int ExitCode, string Stdout, string Stderr) Run(params string[] args)
    {
        using Process process = Start(args);
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(Patience))
        {
            process.Kill();
            Assert.Fail("the launcher did not exit");
        }

        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    [Theory]
    [InlineData("--vm", "guest-cid=2,socket=/tmp/s,uds-path=/tmp/u",
        "error: --vm guest-cid=2,socket=/tmp/s,uds-path=/tmp/u: guest-cid: guest CID 2 is reserved (0, 1, 2 and 4294967295 cannot be used)")]
    [InlineData("--bogus", "1", "error: Unrecognized command or argument '--bogus' (see --help)")]
    public void Bad_argument_prints_one_error_line_on_stderr_and_exits_1(string flag, string value, string expected)
    {
        (int exitCode, string stdout, string stderr) = Run(flag, value);

        Assert.Equal(1, exitCode);
        Assert.Equal(expected + Environment.NewLine, stderr);
        Assert.Empty(stdout);
    }

    [Fact]
    public void Version_goes_to_stdout_and_exits_0()
    {
        (int exitCode, string stdout, string stderr) = Run("-V");

        Assert.Equal(0, exitCode);
        Assert.Matches(@"^vhost-device-vsock \d+\.\d+\S*\n$", stdout);
        Assert.Empty(stderr);
    }

    [Fact]
    public void Sigterm_stops_a_running_launcher_cleanly_with_exit_code_0()
    {
        using Process process = Start(
            "--log-level", "info",
            "--vm", $"guest-cid=3,socket={_dir.File("vhost3.socket")},uds-path={_dir.File("vm3.vsock")}");
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stderr = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            stderr.Enqueue(e.Data);
            if (e.Data.Contains("started with 1 device(s)", StringComparison.Ordinal))
            {
                started.TrySetResult();
            }
        };
        process.BeginErrorReadLine();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();

        try
        {
            Assert.True(started.Task.Wait(Patience), "no start-up line; stderr: " + string.Join(" | ", stderr));

            using (Process kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                kill.WaitForExit();
            }

            Assert.True(process.WaitForExit(Patience), "the launcher did not stop on SIGTERM");
            process.WaitForExit(); // drain the redirected streams
            Assert.Equal(0, process.ExitCode);
            Assert.Empty(stdout.Result);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }
    }

    [Fact]
    public void Stats_file_is_written_on_sigusr1_and_at_exit()
    {
        string statsFile = _dir.File("stats");
        using Process process = Start(
            new Dictionary<string, string> { ["VSOCK_STATS_FILE"] = statsFile },
            "--log-level", "info",
            "--vm", $"guest-cid=3,socket={_dir.File("vhost3.socket")},uds-path={_dir.File("vm3.vsock")}");
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data?.Contains("started with 1 device(s)", StringComparison.Ordinal) == true)
            {
                started.TrySetResult();
            }
        };
        process.BeginErrorReadLine();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();

        try
        {
            Assert.True(started.Task.Wait(Patience), "no start-up line");
            Assert.False(File.Exists(statsFile));

            Signal("-USR1", process);
            Dictionary<string, long> snapshot = WaitForStats(statsFile, sequence: 1);
            Assert.Equal(["sequence", "gen0", "gen1", "gen2", "allocated_bytes", "heap_bytes"], snapshot.Keys);
            Assert.True(snapshot["allocated_bytes"] > 0);
            Assert.False(process.HasExited, "SIGUSR1 must not stop the daemon when VSOCK_STATS_FILE is set");

            Signal("-TERM", process);
            Assert.True(process.WaitForExit(Patience), "the launcher did not stop on SIGTERM");
            process.WaitForExit();
            Assert.Equal(0, process.ExitCode);
            Dictionary<string, long> final = WaitForStats(statsFile, sequence: 2);
            Assert.True(final["allocated_bytes"] >= snapshot["allocated_bytes"]);
            Assert.Empty(stdout.Result);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }
    }

    private static void Signal(string signal, Process process)
    {
        using Process kill = Process.Start("kill", [signal, process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    private static Dictionary<string, long> WaitForStats(string path, long sequence)
    {
        DateTime deadline = DateTime.UtcNow + Patience;
        while (DateTime.UtcNow < deadline)
        {
            if (File.Exists(path))
            {
                Dictionary<string, long> values = File.ReadAllLines(path)
                    .Select(line => line.Split(' '))
                    .ToDictionary(parts => parts[0], parts => long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
                if (values["sequence"] == sequence)
                {
                    return values;
                }
            }

            Thread.Sleep(20);
        }

        throw new TimeoutException($"{path} did not reach sequence {sequence}");
    }
}
