using System.Net.Sockets;
using System.Text;
using Vsock.Launcher.Tests.Daemon;

namespace Vsock.Launcher.Tests.Systemd;

/// <summary>
/// The sd_notify protocol as systemd runs a <c>Type=notify</c> unit: the test plays systemd with a unix
/// datagram socket of its own, named to the daemon by <c>NOTIFY_SOCKET</c>.
/// </summary>
public sealed class SystemdNotifyTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly Socket _notify = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);

    public SystemdNotifyTests()
    {
        _notify.Bind(new UnixDomainSocketEndPoint(_dir.File("notify")));
        _notify.ReceiveTimeout = (int)DaemonProcess.Patience.TotalMilliseconds;
    }

    public void Dispose()
    {
        _notify.Dispose();
        _dir.Dispose();
    }

    private string Receive()
    {
        var buffer = new byte[4096];
        int length = _notify.Receive(buffer);
        return Encoding.UTF8.GetString(buffer, 0, length);
    }

    [Fact]
    public void Ready_comes_once_every_vm_socket_listens_and_stopping_on_sigterm()
    {
        ulong[] cids = [3, 4, 5];
        string[] sockets = [.. cids.SelectMany(cid => new[] { _dir.File($"vhost{cid}.socket"), _dir.File($"vm{cid}.vsock") })];
        using var daemon = DaemonProcess.StartDll(
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = _dir.File("notify") },
            [.. cids.SelectMany(cid => new[] { "--vm", $"guest-cid={cid},socket={_dir.File($"vhost{cid}.socket")},uds-path={_dir.File($"vm{cid}.vsock")}" })]);

        string first = Receive();

        Assert.Equal("READY=1", first.TrimEnd('\n'));
        Assert.All(sockets, path => Assert.True(File.Exists(path), $"READY=1 before {path} exists"));
        // systemd's clients may connect as soon as they see READY=1.
        foreach (string path in sockets)
        {
            using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            client.Connect(new UnixDomainSocketEndPoint(path));
        }

        daemon.Signal("-TERM");
        Assert.Equal("STOPPING=1", Receive().TrimEnd('\n'));
        Assert.Equal(0, daemon.WaitForExit());
    }

    [Fact]
    public void Without_notify_socket_nothing_is_sent_and_the_daemon_runs_as_before()
    {
        using var daemon = DaemonProcess.StartDll(null,
            "--vm", $"guest-cid=3,socket={_dir.File("vhost3.socket")},uds-path={_dir.File("vm3.vsock")}");

        Assert.True(daemon.WaitForLine("listening for the VMM"), "no device line; stderr: " + daemon.Stderr);
        daemon.Signal("-TERM");
        Assert.Equal(0, daemon.WaitForExit());
        Assert.Equal(0, _notify.Available);
    }
}
