using System.Net.Sockets;
using Vsock.Testing;

namespace Vsock.Integration.Tests;

/// <summary>The synthetic guest's in-driver applications (what the benchmark uses) against the real daemon.</summary>
public sealed class DriverApplicationTests
{
    [Theory]
    [InlineData(4096, false, false)]
    [InlineData(65536, true, false)]
    [InlineData(4096, false, true)]
    public async Task A_sink_consumes_what_the_host_sends_and_a_source_sends_what_the_host_reads(int writeSize, bool poll, bool lazyTx)
    {
        const int total = 8 << 20;
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket, SyntheticGuestOptions.Default with
        {
            RecordReceived = false,
            PollBeforeSleep = poll ? TimeSpan.FromMicroseconds(50) : TimeSpan.Zero,
            LazyTxReclaim = lazyTx,
        });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var listener = guest.Listen(5000);
        using var host = await HostVsock.ConnectAsync(daemon[0].UdsPath!, 5000, Scenario.Timeout);
        var stream = await listener.AcceptAsync(cts.Token);

        // The host starts first, so the sink also takes over bytes the stream buffered before it ran.
        var send = host.SendAllAsync(TestPattern.RandomBytes(total, 1), cts.Token);
        await Task.Delay(50, cts.Token);
        await stream.SinkAsync(total).WaitAsync(cts.Token);
        await send;

        var source = stream.SourceAsync(total, writeSize);
        await host.ReadExactlyAsync(total, cts.Token);
        await source.WaitAsync(cts.Token);
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task Four_sources_that_fill_the_tx_ring_keep_going_with_lazy_reclaim()
    {
        // Four in-driver sources fill the 128-entry TX ring between two interrupts. A lazily reclaiming driver
        // must then ask for the TX interrupt that frees the ring (it once went to sleep with it off and, with no
        // credit update due, nothing woke it: the benchmark's guest → host 4 KiB × 4 cell hung).
        const long perStream = 32L << 20;
        await using var daemon = await InProcessDaemon.StartAsync(1, vm => vm with { TxBufferSize = 262144 });
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket, SyntheticGuestOptions.Default with
        {
            RecordReceived = false,
            MemorySize = 128L << 20,
            LazyTxReclaim = true,
        });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        for (var round = 0; round < 3; round++)
        {
            var port = 7000 + (uint)round;
            using var listener = guest.Listen(port);
            var hosts = new List<Socket>();
            var work = new List<Task>();
            for (var i = 0; i < 4; i++)
            {
                var host = await HostVsock.ConnectAsync(daemon[0].UdsPath!, port, Scenario.Timeout);
                hosts.Add(host);
                var stream = await listener.AcceptAsync(cts.Token);
                work.Add(stream.SourceAsync(perStream, 4096));
                work.Add(host.ReadExactlyAsync((int)perStream, cts.Token));
            }
            await Task.WhenAll(work).WaitAsync(cts.Token);
            foreach (var host in hosts)
                host.Dispose();
        }
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task A_lazily_reclaiming_driver_still_wakes_a_writer_that_waits_for_tx_room()
    {
        // 64 KiB packets in 4 KiB fragments: 17 descriptors each, so the 128-entry TX ring fills and the
        // writer has to wait for room, which needs TX interrupts back on.
        const int total = 4 << 20;
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket, SyntheticGuestOptions.Default with
        {
            LazyTxReclaim = true,
            TxLayout = TxLayout.SplitPayload,
        });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var hostListener = HostVsock.Listen(daemon[0].UdsPath!, 6002);
        var stream = await guest.ConnectAsync(2, 6002, Scenario.Timeout, cts.Token);
        using var host = await hostListener.AcceptAsync(cts.Token);
        var data = TestPattern.RandomBytes(total, 3);
        var write = stream.WriteAsync(data, cts.Token).AsTask();
        var received = await host.ReadExactlyAsync(total, cts.Token);
        await write;
        Assert.Equal(Scenario.Hash(data), Scenario.Hash(received));
        Assert.True(guest.Statistics.TxInterrupts > 0, "the writer never asked for TX room");
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task Echo_and_ping_pong_run_request_by_request()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket, SyntheticGuestOptions.Default with { RecordReceived = false });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        // Guest echo, host client.
        using var listener = guest.Listen(5001);
        using var host = await HostVsock.ConnectAsync(daemon[0].UdsPath!, 5001, Scenario.Timeout);
        var stream = await listener.AcceptAsync(cts.Token);
        var echo = stream.EchoAsync(100 * 64);
        var message = TestPattern.RandomBytes(64, 2);
        var reply = new byte[64];
        for (var i = 0; i < 100; i++)
        {
            await host.SendAllAsync(message, cts.Token);
            await host.ReceiveAsync(reply, SocketFlags.None, cts.Token);
        }
        await echo.WaitAsync(cts.Token);

        // Guest client, host echo.
        using var hostListener = HostVsock.Listen(daemon[0].UdsPath!, 6001);
        var client = await guest.ConnectAsync(2, 6001, Scenario.Timeout, cts.Token);
        using var hostEcho = await hostListener.AcceptAsync(cts.Token);
        var echoTask = Task.Run(async () =>
        {
            var buffer = new byte[64];
            for (var done = 0; done < 100 * 64;)
            {
                var n = await hostEcho.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                Assert.NotEqual(0, n);
                await hostEcho.SendAllAsync(buffer.AsMemory(0, n).ToArray(), cts.Token);
                done += n;
            }
        });
        var times = await client.PingPongAsync(100, 64).WaitAsync(cts.Token);
        await echoTask;
        Assert.Equal(100, times.Length);
        Assert.All(times, t => Assert.True(t > 0));
        Scenario.AssertClean(guest);
    }
}
