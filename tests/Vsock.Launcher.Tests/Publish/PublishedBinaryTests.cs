using System.Net.Sockets;
using System.Text;
using Vsock.Testing;
using Vsock.Testing.HostSide;
using DaemonProcess = Vsock.Launcher.Tests.Daemon.DaemonProcess;

namespace Vsock.Launcher.Tests.Publish;

/// <summary>
/// The published single-file binary (self-contained, trimmed) as an operator installs it: alone in its
/// directory, with the synthetic guest as the VMM and the guest, so a real CONNECT → OK and data both ways
/// go through it.
/// </summary>
public sealed class PublishedBinaryTests(PublishedBinary published) : IClassFixture<PublishedBinary>, IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void It_is_one_file_with_the_dispatchers_embedded()
    {
        string directory = Path.GetDirectoryName(published.Executable)!;

        Assert.Equal(["vhost-device-vsock"], Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_host_connect_reaches_a_listening_guest_and_data_flows_both_ways()
    {
        string socket = _dir.File("vhost3.socket");
        string uds = _dir.File("vm3.vsock");
        using var daemon = DaemonProcess.StartExecutable(published.Executable, null,
            "--vm", $"guest-cid=3,socket={socket},uds-path={uds}");
        Assert.True(daemon.WaitForLine("listening for the VMM"), "the published binary did not start; stderr: " + daemon.Stderr);

        using var cts = new CancellationTokenSource(Timeout);
        await using (var guest = SyntheticGuest.Connect(socket))
        {
            using var listener = guest.Listen(5000);
            using var host = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await host.ConnectAsync(new UnixDomainSocketEndPoint(uds), cts.Token);
            await host.SendAsync(Encoding.ASCII.GetBytes("CONNECT 5000\nping"), cts.Token);

            var stream = await listener.AcceptAsync(cts.Token);
            Assert.Equal("OK 5000\n", Encoding.ASCII.GetString(await host.ReadExactlyAsync("OK 5000\n".Length, cts.Token)));
            Assert.Equal("ping", Encoding.ASCII.GetString(await stream.ReadExactlyAsync(4, cts.Token)));

            await stream.WriteAsync(Encoding.ASCII.GetBytes("pong"), cts.Token);
            Assert.Equal("pong", Encoding.ASCII.GetString(await host.ReadExactlyAsync(4, cts.Token)));
            await stream.CloseAsync();
        }

        daemon.Signal("-TERM");
        Assert.Equal(0, daemon.WaitForExit());
        Assert.False(File.Exists(socket) || File.Exists(uds), "the sockets outlive the daemon");
    }

    [Fact]
    public async Task The_trimmed_binary_serves_the_meter_at_its_metrics_endpoint()
    {
        using var daemon = DaemonProcess.StartExecutable(published.Executable, null,
            "--socket", _dir.File("vhost3.socket"), "--uds-path", _dir.File("vm3.vsock"), "--metrics-listen", "127.0.0.1:0");
        Assert.True(daemon.WaitForLine("listening for the VMM"), "the published binary did not start; stderr: " + daemon.Stderr);
        string url = System.Text.RegularExpressions.Regex.Match(daemon.Stderr, @"http://127\.0\.0\.1:\d+/metrics").Value;

        using var http = new HttpClient { Timeout = Timeout };
        string text = await http.GetStringAsync(url);

        Assert.Contains("# TYPE vsock_rx_bytes_total counter\n", text);
        Assert.Contains("vsock_vmm_sessions_total{guest_cid=\"3\"} 0\n", text);
        daemon.Signal("-TERM");
        Assert.Equal(0, daemon.WaitForExit());
    }
}
