using System.Net;
using System.Net.Sockets;
using Vsock.Launcher.Tests.Daemon;

namespace Vsock.Launcher.Tests.Cluster;

/// <summary>The daemon as its own process with a cluster endpoint it cannot have.</summary>
public sealed class ClusterBindProcessTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_cluster_address_in_use_is_one_error_line_and_exit_status_1()
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        string endpoint = taken.LocalEndPoint!.ToString()!;

        using var daemon = DaemonProcess.StartDll(null,
            "--socket", _dir.File("v.socket"), "--uds-path", _dir.File("u.vsock"),
            "--cluster-bind", endpoint, "--cluster-seeds", endpoint);

        Assert.Equal(1, daemon.WaitForExit());
        string line = Assert.Single(daemon.StderrLines);
        Assert.Equal($"error: cannot listen on {endpoint} for the cluster (--cluster-bind, YAML cluster: bind:): Address already in use", line);
        Assert.False(File.Exists(_dir.File("v.socket")), "no device may start");
    }
}
