using System.Net.Sockets;
using System.Text;
using Vsock.Testing.HostSide;

namespace Vsock.Testing.Tests.HostSide;

/// <summary>
/// The host-side helpers against a stand-in for the daemon's unix-socket side (no QEMU, no daemon):
/// the CONNECT/OK handshake, refusal, the echo check and the sink listener's reply line.
/// </summary>
public sealed class HostVsockTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("vshost-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    [Fact]
    public async Task Connect_handshake_then_echo_is_verified_byte_by_byte()
    {
        var path = Path.Combine(directory, "vm.vsock");
        await using var fake = HostListener.Start(path, FakeDaemonSideAsync);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var socket = await HostVsock.ConnectAsync(path, 1234, cts.Token);
        var progress = new TransferProgress();
        var result = await PatternTransfer.EchoAsync(socket, 3 * 65536 + 17, 5, cts.Token, progress);
        Assert.True(result.IsExactEcho, result.ToString());
        Assert.Equal(TestPattern.Checksum(3 * 65536 + 17, 5), result.SentSha);
        Assert.Equal(result.Received, progress.Received);
    }

    [Fact]
    public async Task Corrupted_echo_is_reported_at_the_first_wrong_byte()
    {
        var path = Path.Combine(directory, "vm.vsock");
        await using var fake = HostListener.Start(path, (s, i, ct) => FakeDaemonSideAsync(s, i, ct, corruptAt: 1000));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var socket = await HostVsock.ConnectAsync(path, 1234, cts.Token);
        var result = await PatternTransfer.EchoAsync(socket, 4096, 5, cts.Token);
        Assert.False(result.IsExactEcho);
        Assert.Equal(1000, result.FirstMismatchAt);
    }

    [Fact]
    public async Task Connection_closed_without_ok_is_a_refusal()
    {
        var path = Path.Combine(directory, "vm.vsock");
        await using var fake = HostListener.Start(path, FakeDaemonSideAsync);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await Assert.ThrowsAsync<GuestRefusedException>(() => HostVsock.ConnectAsync(path, 4321, cts.Token));
    }

    [Fact]
    public async Task Sink_listener_replies_with_count_and_checksum()
    {
        var path = Path.Combine(directory, "vm.vsock_5000");
        await using var sink = HostListener.Start(path, HostListener.Behaviour.SinkWithReply);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await client.ConnectAsync(new UnixDomainSocketEndPoint(path), cts.Token);
        var sha = await PatternTransfer.SendAsync(client, 100000, 9, cts.Token);
        var reply = await client.ReadLineAsync(128, cts.Token);
        Assert.Equal($"SINK bytes=100000 sha={TestPattern.Hex(sha)}", reply);
        var served = Assert.Single(await sink.WaitForConnectionsAsync(1, TimeSpan.FromSeconds(10)));
        Assert.Equal(sha, served.Sha);
    }

    /// <summary>Accepts "CONNECT 1234\n" with "OK 1234\n" and echoes; closes any other port.</summary>
    private static async Task<HostConnection> FakeDaemonSideAsync(Socket socket, int index, CancellationToken ct) =>
        await FakeDaemonSideAsync(socket, index, ct, corruptAt: -1);

    private static async Task<HostConnection> FakeDaemonSideAsync(Socket socket, int index, CancellationToken ct, long corruptAt)
    {
        var line = await socket.ReadLineAsync(64, ct);
        if (line != "CONNECT 1234")
        {
            return new HostConnection(index, 0, 0, "refused " + line);
        }
        await socket.SendAllAsync(Encoding.ASCII.GetBytes("OK 1234\n"), ct);
        var buffer = new byte[8192];
        long total = 0;
        while (await socket.ReceiveAsync(buffer, SocketFlags.None, ct) is var n && n > 0)
        {
            if (corruptAt >= total && corruptAt < total + n)
            {
                buffer[corruptAt - total] ^= 0xff;
            }
            total += n;
            await socket.SendAllAsync(buffer.AsMemory(0, n), ct);
        }
        socket.Shutdown(SocketShutdown.Send);
        return new HostConnection(index, total, 0, null);
    }
}
