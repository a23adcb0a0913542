using Vsock.Testing;

namespace Vsock.Integration.Tests;

/// <summary>Normal traffic between host applications and the synthetic guest through the real daemon.</summary>
public sealed class DataPathTests
{
    private const int Bulk = 4 << 20;

    [Fact]
    public async Task Host_to_guest_moves_4_MiB_each_way_intact()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var listener = guest.Listen(5000);

        using var host = await HostVsock.ConnectAsync(daemon[0].UdsPath!, 5000, Scenario.Timeout);
        var stream = await listener.AcceptAsync(cts.Token);
        Assert.Equal(2ul, stream.PeerCid);
        Assert.Equal(5000u, stream.LocalPort);

        var toGuest = TestPattern.RandomBytes(Bulk, 1);
        var toHost = TestPattern.RandomBytes(Bulk, 2);
        var hostSend = host.SendAllAsync(toGuest, cts.Token);
        var hostReceive = host.ReadExactlyAsync(Bulk, cts.Token);
        var guestSend = stream.WriteAsync(toHost, cts.Token).AsTask();
        var guestReceive = stream.ReadExactlyAsync(Bulk, cts.Token);
        await Task.WhenAll(hostSend, hostReceive, guestSend, guestReceive);

        Assert.Equal(Scenario.Hash(toGuest), Scenario.Hash(await guestReceive));
        Assert.Equal(Scenario.Hash(toHost), Scenario.Hash(await hostReceive));
        await stream.CloseAsync();
        Assert.Equal(CloseOutcome.ClosedByPeerReset, stream.CloseOutcome);
        Assert.True(await host.WaitForCloseAsync(Scenario.Timeout), "the host socket stays open after the guest closed");
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task Guest_to_host_moves_4_MiB_each_way_intact()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var hostListener = HostVsock.Listen(daemon[0].UdsPath!, 6000);

        var stream = await guest.ConnectAsync(2, 6000, Scenario.Timeout, cts.Token);
        using var host = await hostListener.AcceptAsync(cts.Token);
        Assert.Equal(49152u, stream.LocalPort);
        Assert.Equal(6000u, stream.PeerPort);

        var toGuest = TestPattern.RandomBytes(Bulk, 3);
        var toHost = TestPattern.RandomBytes(Bulk, 4);
        var hostSend = host.SendAllAsync(toGuest, cts.Token);
        var hostReceive = host.ReadExactlyAsync(Bulk, cts.Token);
        var guestSend = stream.WriteAsync(toHost, cts.Token).AsTask();
        var guestReceive = stream.ReadExactlyAsync(Bulk, cts.Token);
        await Task.WhenAll(hostSend, hostReceive, guestSend, guestReceive);

        Assert.Equal(Scenario.Hash(toGuest), Scenario.Hash(await guestReceive));
        Assert.Equal(Scenario.Hash(toHost), Scenario.Hash(await hostReceive));

        // The host closes first: the guest sees EOF, and its close completes.
        host.Close();
        Assert.Equal(0, await stream.ReadAsync(new byte[1], cts.Token));
        await stream.CloseAsync();
        Assert.NotEqual(CloseOutcome.TimedOut, stream.CloseOutcome);
        Scenario.AssertClean(guest);
    }

    [Theory]
    [InlineData(RxLayout.TwoDescriptors, TxLayout.SingleDescriptor, false)]
    [InlineData(RxLayout.SingleDescriptor, TxLayout.SplitPayload, false)]
    [InlineData(RxLayout.SingleDescriptor, TxLayout.HeaderThenPayload, true)]
    [InlineData(RxLayout.Indirect, TxLayout.HeaderThenPayload, false)]
    public async Task Other_guest_buffer_layouts_and_no_event_idx_work(RxLayout rx, TxLayout tx, bool noEventIdx)
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        // 3776-byte single RX buffers are what a Linux 6.1 guest posts; older kernels used 4 KiB data descriptors.
        var options = new SyntheticGuestOptions { RxLayout = rx, TxLayout = tx, EventIdx = !noEventIdx, RxBufferSize = rx == RxLayout.SingleDescriptor ? 3776 : 4096 };
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket, options);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var hostListener = HostVsock.Listen(daemon[0].UdsPath!, 6001);
        var stream = await guest.ConnectAsync(2, 6001, Scenario.Timeout, cts.Token);
        using var host = await hostListener.AcceptAsync(cts.Token);

        var data = TestPattern.RandomBytes(1 << 20, 5);
        var send = Task.WhenAll(stream.WriteAsync(data, cts.Token).AsTask(), host.SendAllAsync(data, cts.Token));
        var hostGot = await host.ReadExactlyAsync(data.Length, cts.Token);
        var guestGot = await stream.ReadExactlyAsync(data.Length, cts.Token);
        await send;
        Assert.Equal(Scenario.Hash(data), Scenario.Hash(hostGot));
        Assert.Equal(Scenario.Hash(data), Scenario.Hash(guestGot));
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task A_1024_entry_queue_and_a_small_guest_buf_alloc_work()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        // QEMU's MMIO vsock asks for 1024 entries (the daemon's default maximum); a 4 KiB buf_alloc
        // makes the daemon wait for the guest's credit after every packet.
        var options = new SyntheticGuestOptions { QueueSize = 1024, MemorySize = 160L << 20, BufAlloc = 4096 };
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket, options);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var listener = guest.Listen(5100);
        using var host = await HostVsock.ConnectAsync(daemon[0].UdsPath!, 5100, Scenario.Timeout);
        var stream = await listener.AcceptAsync(cts.Token);

        var data = TestPattern.RandomBytes(1 << 20, 10);
        var send = host.SendAllAsync(data, cts.Token);
        var received = await stream.ReadExactlyAsync(data.Length, cts.Token);
        await send;
        Assert.Equal(Scenario.Hash(data), Scenario.Hash(received));
        Assert.Equal(0, guest.Statistics.CreditViolations);
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task Thirty_two_concurrent_connections_half_each_way()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var uds = daemon[0].UdsPath!;
        const int Size = 256 * 1024;
        using var guestListener = guest.Listen(7000);
        using var hostListener = HostVsock.Listen(uds, 7001);

        async Task HostInitiated(int i)
        {
            using var host = await HostVsock.ConnectAsync(uds, 7000, Scenario.Timeout);
            var toGuest = TestPattern.RandomBytes(Size, 100 + i);
            await host.SendAllAsync(BitConverter.GetBytes(i), cts.Token);
            await host.SendAllAsync(toGuest, cts.Token);
            var back = await host.ReadExactlyAsync(Size, cts.Token);
            Assert.Equal(Scenario.Hash(toGuest), Scenario.Hash(back));
        }

        async Task GuestAccepts()
        {
            var echoes = new List<Task>();
            for (var i = 0; i < 16; i++)
            {
                var stream = await guestListener.AcceptAsync(cts.Token);
                echoes.Add(Task.Run(async () =>
                {
                    var index = BitConverter.ToInt32(await stream.ReadExactlyAsync(4, cts.Token));
                    var data = await stream.ReadExactlyAsync(Size, cts.Token);
                    Assert.Equal(Scenario.Hash(TestPattern.RandomBytes(Size, 100 + index)), Scenario.Hash(data));
                    await stream.WriteAsync(data, cts.Token);
                }));
            }
            await Task.WhenAll(echoes);
        }

        async Task GuestInitiated(int i)
        {
            var stream = await guest.ConnectAsync(2, 7001, Scenario.Timeout, cts.Token);
            var toHost = TestPattern.RandomBytes(Size, 200 + i);
            await stream.WriteAsync(BitConverter.GetBytes(i), cts.Token);
            await stream.WriteAsync(toHost, cts.Token);
            var back = await stream.ReadExactlyAsync(Size, cts.Token);
            Assert.Equal(Scenario.Hash(toHost), Scenario.Hash(back));
            await stream.CloseAsync();
        }

        async Task HostAccepts()
        {
            var echoes = new List<Task>();
            for (var i = 0; i < 16; i++)
            {
                var host = await hostListener.AcceptAsync(cts.Token);
                echoes.Add(Task.Run(async () =>
                {
                    using var _ = host;
                    var index = BitConverter.ToInt32(await host.ReadExactlyAsync(4, cts.Token));
                    var data = await host.ReadExactlyAsync(Size, cts.Token);
                    Assert.Equal(Scenario.Hash(TestPattern.RandomBytes(Size, 200 + index)), Scenario.Hash(data));
                    await host.SendAllAsync(data, cts.Token);
                    await host.WaitForCloseAsync(Scenario.Timeout);
                }));
            }
            await Task.WhenAll(echoes);
        }

        var all = new List<Task> { GuestAccepts(), HostAccepts() };
        all.AddRange(Enumerable.Range(0, 16).Select(HostInitiated));
        all.AddRange(Enumerable.Range(0, 16).Select(GuestInitiated));
        await Task.WhenAll(all);
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task Guest_writer_blocks_on_credit_while_the_host_does_not_read_and_resumes()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var hostListener = HostVsock.Listen(daemon[0].UdsPath!, 8000);
        var stream = await guest.ConnectAsync(2, 8000, Scenario.Timeout, cts.Token);
        using var host = await hostListener.AcceptAsync(cts.Token);

        // Far more than the daemon's TX buffer plus the host socket's buffers can hold.
        var data = TestPattern.RandomBytes(16 << 20, 6);
        var write = stream.WriteAsync(data, cts.Token).AsTask();
        var stalledAt = await Scenario.WaitForStallAsync(() => stream.BytesSent, TimeSpan.FromMilliseconds(300), cts.Token);
        Assert.False(write.IsCompleted, "the whole write went through although the host never read");
        Assert.True(stalledAt < data.Length);
        await Scenario.WaitUntilAsync(() => stream.PeerCredit == 0, cts.Token); // blocked on credit, not on anything else

        var received = await host.ReadExactlyAsync(data.Length, cts.Token);
        await write;
        Assert.Equal(Scenario.Hash(data), Scenario.Hash(received));
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task Host_writer_is_held_back_by_guest_credit_and_resumes_when_the_guest_reads()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var listener = guest.Listen(8001);
        using var host = await HostVsock.ConnectAsync(daemon[0].UdsPath!, 8001, Scenario.Timeout);
        var stream = await listener.AcceptAsync(cts.Token);

        var data = TestPattern.RandomBytes(8 << 20, 7);
        var send = host.SendAllAsync(data, cts.Token);
        // The guest does not read: the daemon may send only buf_alloc (256 KiB) bytes.
        await Scenario.WaitForStallAsync(() => (long)stream.BytesBuffered, TimeSpan.FromMilliseconds(300), cts.Token);
        Assert.InRange(stream.BytesBuffered, 1, 256 * 1024);
        Assert.False(send.IsCompleted);

        var received = await stream.ReadExactlyAsync(data.Length, cts.Token);
        await send;
        Assert.Equal(Scenario.Hash(data), Scenario.Hash(received));
        Assert.Equal(0, guest.Statistics.CreditViolations);
        Scenario.AssertClean(guest);
    }
}
