using Vsock.Launcher.Tests.Daemon;

namespace Vsock.Launcher.Tests;

/// <summary>The built launcher as a user runs it: <c>dotnet vhost-device-vsock.dll ...</c>.</summary>
public sealed class LauncherProcessTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static (int ExitCode, string Stdout, string Stderr) Run(params string[] args)
    {
        using var daemon = DaemonProcess.StartDll(null, args);
        int? exitCode = daemon.WaitForExit();
        Assert.True(exitCode.HasValue, "the launcher did not exit");
        string stderr = daemon.StderrLines.Count == 0 ? "" : daemon.Stderr + Environment.NewLine;
        return (exitCode.Value, daemon.Stdout, stderr);
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
        using var daemon = DaemonProcess.StartDll(null,
            "--log-level", "info",
            "--vm", $"guest-cid=3,socket={_dir.File("vhost3.socket")},uds-path={_dir.File("vm3.vsock")}");

        Assert.True(daemon.WaitForLine("started with 1 device(s)"), "no start-up line; stderr: " + daemon.Stderr);
        daemon.Signal("-TERM");

        Assert.Equal(0, daemon.WaitForExit());
        Assert.Empty(daemon.Stdout);
    }

    [Fact]
    public void Stats_file_is_written_on_sigusr1_and_at_exit()
    {
        string statsFile = _dir.File("stats");
        using var daemon = DaemonProcess.StartDll(
            new Dictionary<string, string> { ["VSOCK_STATS_FILE"] = statsFile },
            "--log-level", "info",
            "--vm", $"guest-cid=3,socket={_dir.File("vhost3.socket")},uds-path={_dir.File("vm3.vsock")}");

        Assert.True(daemon.WaitForLine("started with 1 device(s)"), "no start-up line; stderr: " + daemon.Stderr);
        Assert.False(File.Exists(statsFile));

        daemon.Signal("-USR1");
        Dictionary<string, long> snapshot = WaitForStats(statsFile, sequence: 1);
        Assert.Equal(["sequence", "gen0", "gen1", "gen2", "allocated_bytes", "heap_bytes"], snapshot.Keys.Take(6));
        // Then every VM's data-path counters (what the benchmark prints per cell).
        Assert.All(snapshot.Keys.Skip(6), key => Assert.StartsWith("counter.3.", key));
        Assert.Contains("counter.3.RxBytes", snapshot.Keys);
        Assert.True(snapshot["allocated_bytes"] > 0);
        Assert.False(daemon.HasExited, "SIGUSR1 must not stop the daemon when VSOCK_STATS_FILE is set");

        daemon.Signal("-TERM");
        Assert.Equal(0, daemon.WaitForExit());
        Dictionary<string, long> final = WaitForStats(statsFile, sequence: 2);
        Assert.True(final["allocated_bytes"] >= snapshot["allocated_bytes"]);
        Assert.Empty(daemon.Stdout);
    }

    private static Dictionary<string, long> WaitForStats(string path, long sequence)
    {
        DateTime deadline = DateTime.UtcNow + DaemonProcess.Patience;
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
