using System.Net.Sockets;
using Vsock.Device.Connections;
using Vsock.Testing;

namespace Vsock.Integration.Tests;

/// <summary>
/// The rent count of <see cref="PayloadPool"/> is process-wide: these tests run alone, not beside other tests'
/// streams (xunit runs a collection with parallelization disabled after the others).
/// </summary>
[CollectionDefinition(nameof(PayloadPoolCollection), DisableParallelization = true)]
public sealed class PayloadPoolCollection;

/// <summary>
/// Issue 10's "one copy each way": in steady state a host stream rents no pooled buffer on either path. Host →
/// guest reads straight into the guest's RX buffers; guest → host writes from guest memory and copies into the
/// stream's TX buffer only what the socket refuses, the TX buffer's storage rented once and kept.
/// </summary>
[Collection(nameof(PayloadPoolCollection))]
public sealed class SteadyStateTests
{
    private const int WarmUp = 1 << 20;
    private const int Bulk = 16 << 20;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_host_stream_rents_no_pooled_buffer_while_16_MiB_move_each_way(bool slowHostReader)
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket, new SyntheticGuestOptions { RecordReceived = false });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        using var listener = guest.Listen(5000);
        using var host = await HostVsock.ConnectAsync(daemon[0].UdsPath!, 5000, Scenario.Timeout);
        var stream = await listener.AcceptAsync(cts.Token);
        var before = PayloadPool.Rents;

        // Warm-up: the host lets its socket fill before it reads, so the daemon must keep what the socket refuses.
        await ExchangeAsync(host, stream, WarmUp, 1, slowHostReader: true, cts.Token);
        var warm = PayloadPool.Rents;
        Assert.Equal(before + 1, warm); // the stream's TX buffer, rented once, when the socket first refused bytes

        await ExchangeAsync(host, stream, Bulk, 2, slowHostReader, cts.Token);

        Assert.Equal(warm, PayloadPool.Rents);
        Scenario.AssertClean(guest);
    }

    /// <summary>
    /// <paramref name="count"/> bytes each way at once, checked with SHA-256. A slow host reader first lets its socket
    /// fill up (so the daemon must buffer what the socket refuses), then reads in small pieces with pauses, so the
    /// socket keeps refusing bytes now and then.
    /// </summary>
    private static async Task ExchangeAsync(Socket host, GuestStream stream, int count, int seed, bool slowHostReader, CancellationToken ct)
    {
        var toGuest = TestPattern.RandomBytes(count, seed);
        var toHost = TestPattern.RandomBytes(count, seed + 100);
        var hostSend = host.SendAllAsync(toGuest, ct);
        var guestReceive = stream.ReadExactlyAsync(count, ct);
        var guestSend = stream.WriteAsync(toHost, ct).AsTask();
        var hostReceive = slowHostReader ? SlowReceiveAsync(host, count, ct) : host.ReadExactlyAsync(count, ct);
        await Task.WhenAll(hostSend, guestReceive, guestSend, hostReceive);
        Assert.Equal(Scenario.Hash(toGuest), Scenario.Hash(await guestReceive));
        Assert.Equal(Scenario.Hash(toHost), Scenario.Hash(await hostReceive));
    }

    private static async Task<byte[]> SlowReceiveAsync(Socket host, int count, CancellationToken ct)
    {
        // Not a byte read until the socket is full: its queue stops growing.
        await Scenario.WaitUntilAsync(() => host.Available >= 64 * 1024, ct);
        await Scenario.WaitForStallAsync(() => host.Available, TimeSpan.FromMilliseconds(300), ct);
        var buffer = new byte[count];
        var done = 0;
        var reads = 0;
        while (done < count)
        {
            var n = await host.ReceiveAsync(buffer.AsMemory(done, Math.Min(16 * 1024, count - done)), SocketFlags.None, ct);
            if (n == 0)
                throw new EndOfStreamException($"host socket EOF after {done} of {count} bytes");
            done += n;
            if (++reads % 16 == 0)
                await Task.Delay(1, ct);
        }
        return buffer;
    }
}
