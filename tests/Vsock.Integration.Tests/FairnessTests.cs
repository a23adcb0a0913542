using System.Net.Sockets;
using Vsock.Device.Connections;
using Vsock.Testing;
using Vsock.Testing.Packets;

namespace Vsock.Integration.Tests;

/// <summary>
/// Streams share the guest's RX ring round-robin, a 64 KiB quantum each: a host application that never stops
/// writing cannot keep another stream's bytes from the guest.
/// </summary>
public sealed class FairnessTests
{
    /// <summary>
    /// The smallest RX buffers (20 bytes of payload each) make the guest the bottleneck by far, so the flood's socket
    /// stays full (the device always has more of it) and a generous buf_alloc keeps credit from pausing it: only the
    /// device's round-robin lets the quiet stream in.
    /// </summary>
    private const int RxBufferSize = 64;
    private const int PacketsPerQuantum = (int)((RxScheduler.Quantum + RxBufferSize - VsockHeader.Size - 1) / (RxBufferSize - VsockHeader.Size));

    /// <summary>
    /// What may come between the quiet stream's bytes reaching the daemon and the guest: the RX buffers already filled
    /// (one ring, 128), the rest of the turn under way (256 buffers) and a quantum of the flood, three times over for
    /// a loaded machine (about one quantum was measured). A device without fairness lets them through only when the
    /// flood pauses: 145,000 to 2,000,000 packets later here.
    /// </summary>
    private const int MaxPacketsBetween = 3 * (128 + RxScheduler.TurnBudget + PacketsPerQuantum);

    [Fact]
    public async Task A_flood_on_one_stream_does_not_starve_another()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket, new SyntheticGuestOptions { RxBufferSize = RxBufferSize, BufAlloc = 16 << 20 });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var listener = guest.Listen(5000);
        var uds = daemon[0].UdsPath!;
        using var flood = await HostVsock.ConnectAsync(uds, 5000, Scenario.Timeout);
        var floodStream = await listener.AcceptAsync(cts.Token);
        using var quiet = await HostVsock.ConnectAsync(uds, 5000, Scenario.Timeout);
        var quietStream = await listener.AcceptAsync(cts.Token);
        var quietPort = quietStream.PeerPort;

        // The flood: the writer never stops, the guest reads it as fast as it comes.
        using var stopFlood = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        var chunk = TestPattern.RandomBytes(64 * 1024, 1);
        var floodWriter = Task.Run(async () =>
        {
            try
            {
                while (true)
                    await flood.SendAsync(chunk, SocketFlags.None, stopFlood.Token);
            }
            catch (OperationCanceledException)
            {
            }
        });
        var floodReader = Task.Run(async () =>
        {
            var buffer = new byte[256 * 1024];
            try
            {
                while (await floodStream.ReadAsync(buffer, stopFlood.Token) > 0)
                {
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
        await Scenario.WaitUntilAsync(() => guest.Statistics.PayloadBytesReceived > 256 << 10, cts.Token);
        guest.ClearReceived();

        for (var message = 0; message < 3; message++)
        {
            var text = System.Text.Encoding.ASCII.GetBytes($"quiet message {message}");
            var mark = guest.Received.Count;
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
            deadline.CancelAfter(TimeSpan.FromSeconds(15)); // starved: the flood would keep it out for good
            await quiet.SendAllAsync(text, deadline.Token);
            Assert.Equal(text, await quietStream.ReadExactlyAsync(text.Length, deadline.Token));

            var received = guest.Received;
            var at = FindIndex(received, mark, p => p.Header.Operation == VsockOp.Rw && p.Header.SrcPort == quietPort);
            var floodBetween = received.Skip(mark).Take(at - mark).Count(p => p.Header.SrcPort != quietPort);
            Assert.InRange(floodBetween, 0, MaxPacketsBetween);
            guest.ClearReceived(); // the flood's records would fill the test's memory
        }

        Assert.False(floodWriter.IsCompleted, "the flood stopped: it did not compete with the quiet stream");
        stopFlood.Cancel();
        await Task.WhenAll(floodWriter, floodReader);
        Scenario.AssertClean(guest);
    }

    private static int FindIndex(IReadOnlyList<ReceivedPacket> packets, int from, Func<ReceivedPacket, bool> match)
    {
        for (var i = from; i < packets.Count; i++)
        {
            if (match(packets[i]))
                return i;
        }
        throw new InvalidOperationException("the quiet stream's packet is not among the recorded ones");
    }
}
