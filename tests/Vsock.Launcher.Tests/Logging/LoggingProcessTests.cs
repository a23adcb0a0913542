using System.Text.RegularExpressions;
using Vsock.Launcher.Tests.Daemon;

namespace Vsock.Launcher.Tests.Logging;

/// <summary>What the running daemon prints on stderr, and at which level, as a user sees it.</summary>
public sealed partial class LoggingProcessTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [GeneratedRegex(@"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (?<level>[A-Z]{3}) (?<source>[^\]]+)\] (?<message>.*)$")]
    private static partial Regex LinePattern();

    private string[] TwoVms() =>
    [
        "--vm", $"guest-cid=3,socket={_dir.File("vhost3.socket")},uds-path={_dir.File("vm3.vsock")}",
        "--vm", $"guest-cid=4,socket={_dir.File("vhost4.socket")},uds-path={_dir.File("vm4.vsock")}",
    ];

    /// <summary>Runs the daemon until both devices listen (their socket files exist), stops it, and returns its stderr lines.</summary>
    private List<string> RunUntilListening(Dictionary<string, string>? environment, params string[] args)
    {
        using var daemon = DaemonProcess.StartDll(environment, [.. args, .. TwoVms()]);
        DateTime deadline = DateTime.UtcNow + DaemonProcess.Patience;
        while (!(File.Exists(_dir.File("vm3.vsock")) && File.Exists(_dir.File("vm4.vsock"))) && DateTime.UtcNow < deadline)
            Thread.Sleep(20);
        Assert.True(File.Exists(_dir.File("vm4.vsock")), "the devices did not start; stderr: " + daemon.Stderr);
        Thread.Sleep(300); // let the device lines reach the logger
        daemon.Signal("-TERM");
        Assert.Equal(0, daemon.WaitForExit());
        Assert.Empty(daemon.Stdout);
        return [.. daemon.StderrLines];
    }

    private static (string Level, string Source, string Message)[] Parse(IEnumerable<string> lines) =>
    [
        .. lines.Select(line =>
        {
            Match m = LinePattern().Match(line);
            Assert.True(m.Success, $"not a log line: {line}");
            return (m.Groups["level"].Value, m.Groups["source"].Value, m.Groups["message"].Value);
        }),
    ];

    [Fact]
    public void Lines_name_their_source_an_actor_path_below_user_or_the_launcher()
    {
        var lines = Parse(RunUntilListening(null, "--log-level", "debug"));

        Assert.Contains(lines, l => l is { Level: "INF", Source: "vsock/vm-3/device" } && l.Message.StartsWith("device for guest CID 3 listening", StringComparison.Ordinal));
        Assert.Contains(lines, l => l is { Level: "INF", Source: "vsock/vm-4/device" } && l.Message.StartsWith("device for guest CID 4 listening", StringComparison.Ordinal));
        Assert.Contains(lines, l => l is { Level: "DBG", Source: "vsock-groups" } && l.Message == "guest CID 4 registered in groups default");
        Assert.Contains(lines, l => l is { Level: "INF", Source: "vhost-device-vsock" } && l.Message.Contains("started with 2 device(s)", StringComparison.Ordinal));
        Assert.Contains(lines, l => l is { Level: "INF", Source: "vsock/vm-3/device" } && l.Message == "device for guest CID 3 stopped");
    }

    [Fact]
    public void Info_shows_no_debug_line()
    {
        var lines = Parse(RunUntilListening(null, "--log-level", "info"));

        Assert.Contains(lines, l => l.Source == "vsock/vm-4/device");
        Assert.All(lines, l => Assert.Equal("INF", l.Level));
    }

    [Theory]
    [InlineData("VHOST_DEVICE_VSOCK_LOG", "warn")]
    [InlineData("RUST_LOG", "info,vhost_device_vsock=warn")]
    public void Warn_from_the_environment_prints_nothing_for_a_clean_start_and_stop(string variable, string value)
    {
        Assert.Empty(RunUntilListening(new Dictionary<string, string> { [variable] = value }));
    }

    [Fact]
    public void The_flag_wins_over_the_environment()
    {
        var lines = Parse(RunUntilListening(new Dictionary<string, string> { ["VHOST_DEVICE_VSOCK_LOG"] = "off" }, "--log-level", "debug"));

        Assert.Contains(lines, l => l.Level == "DBG");
    }
}
