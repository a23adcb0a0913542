using System.Net.Sockets;
using Vsock.Device.Interop;
using Vsock.Testing;

namespace Vsock.Integration.Tests;

/// <summary>
/// The daemon reads a host socket only into RX buffers the guest has posted. A guest that falls behind leaves the
/// host's bytes in the host socket (the host writer blocks), not in the daemon, and gets every one of them, in
/// order, once it posts buffers again.
/// </summary>
public sealed class LateRxBufferTests
{
    private const int HostSendBuffer = 16 * 1024;
    /// <summary>Small writes, so the count of bytes written lags what the socket holds by at most one write.</summary>
    private const int WriteSize = 4096;

    [Fact]
    public async Task A_guest_that_posts_rx_buffers_late_loses_nothing_and_the_daemon_holds_no_host_data_meanwhile()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket, new SyntheticGuestOptions { RecordReceived = false });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var listener = guest.Listen(5200);
        using var host = await HostVsock.ConnectAsync(daemon[0].UdsPath!, 5200, Scenario.Timeout);
        host.SendBufferSize = HostSendBuffer;
        var stream = await listener.AcceptAsync(cts.Token);
        var socketCapacity = UnixSocketCapacity(HostSendBuffer);

        guest.PauseRxRefill();
        var data = TestPattern.RandomBytes(4 << 20, 11);
        long written = 0;
        var send = Task.Run(async () =>
        {
            for (var offset = 0; offset < data.Length;)
            {
                var n = await host.SendAsync(data.AsMemory(offset, Math.Min(WriteSize, data.Length - offset)), SocketFlags.None, cts.Token);
                offset += n;
                Interlocked.Add(ref written, n);
            }
        });
        // The guest keeps reading, so its credit never holds the host back: only its RX buffers do.
        var read = stream.ReadExactlyAsync(data.Length, cts.Token);

        await Scenario.WaitUntilAsync(() => guest.RxBuffersPosted == 0, cts.Token);
        var stalledAt = await Scenario.WaitForStallAsync(() => Interlocked.Read(ref written), TimeSpan.FromMilliseconds(500), cts.Token);
        var delivered = guest.Statistics.PayloadBytesReceived;

        Assert.False(send.IsCompleted, "the host wrote everything although the guest had no RX buffers");
        // What the host wrote and the guest did not get fits in the host socket: the daemon holds none of it.
        Assert.InRange(stalledAt - delivered, 0, socketCapacity);
        Assert.True(stalledAt - delivered > 0, "the host socket should hold the bytes waiting for the guest");

        guest.ResumeRxRefill();
        await send;
        Assert.Equal(Scenario.Hash(data), Scenario.Hash(await read));
        Scenario.AssertClean(guest);
    }

    /// <summary>How many bytes a unix stream socket with this send buffer takes before its writer must wait.</summary>
    private static long UnixSocketCapacity(int sendBufferSize)
    {
        var (a, b) = UnixSocket.Pair();
        using var reader = b.ToSocket();
        using var writer = a.ToSocket();
        writer.SendBufferSize = sendBufferSize;
        writer.Blocking = false;
        var chunk = new byte[64 * 1024];
        long total = 0;
        while (true)
        {
            var n = writer.Send(chunk, 0, chunk.Length, SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock)
                return total;
            Assert.Equal(SocketError.Success, error);
            total += n;
        }
    }
}
