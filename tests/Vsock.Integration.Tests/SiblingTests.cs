using Vsock.Testing;
using Vsock.Testing.Packets;

namespace Vsock.Integration.Tests;

/// <summary>
/// Sibling VMs in one daemon, each played by a synthetic guest: streams between guests by CID, with
/// the groups deciding who may reach whom, and the device keeping both guests' streams bounded and clean.
/// </summary>
public sealed class SiblingTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Siblings_in_a_group_stream_4MiB_each_way_in_64KiB_packets_over_4KiB_rx_buffers()
    {
        await using var daemon = await InProcessDaemon.StartAsync(2);
        await using var a = SyntheticGuest.Connect(daemon[0].Socket);
        await using var b = SyntheticGuest.Connect(daemon[1].Socket);
        using var cts = new CancellationTokenSource(Timeout);
        using var listener = b.Listen(5000);
        var accept = listener.AcceptAsync(cts.Token);
        var client = await a.ConnectAsync(4, 5000, TimeSpan.FromSeconds(2), cts.Token);
        var server = await accept;
        Assert.Equal(3ul, server.PeerCid);

        var up = TestPattern.RandomBytes(4 << 20, 1);
        var down = TestPattern.RandomBytes(4 << 20, 2);
        var write1 = Task.Run(async () => { await client.WriteAsync(up, cts.Token); client.ShutdownWrite(); });
        var write2 = Task.Run(async () => { await server.WriteAsync(down, cts.Token); server.ShutdownWrite(); });
        var read1 = server.ReadToEndAsync(cts.Token);
        var read2 = client.ReadToEndAsync(cts.Token);
        await Task.WhenAll(write1, write2);
        // A 64 KiB packet arrives whole, split over 4 KiB RX buffers, not truncated.
        Assert.Equal(Scenario.Hash(up), Scenario.Hash(await read1));
        Assert.Equal(Scenario.Hash(down), Scenario.Hash(await read2));
        var parts = b.Received.Where(p => p.Header.Operation == VsockOp.Rw && p.Header.SrcCid == 3).ToList();
        Assert.All(parts, p => Assert.InRange(p.Header.Len, 1u, 4096u - VsockHeader.Size));
        Assert.Equal(up.Length, parts.Sum(p => (long)p.Header.Len));
        Assert.True(a.Statistics.PacketsSent < parts.Count, "the sender's packets were not larger than one RX buffer");
        Scenario.AssertClean(a);
        Scenario.AssertClean(b);
    }

    [Fact]
    public async Task A_sibling_without_a_common_group_is_refused_at_once()
    {
        await using var daemon = await InProcessDaemon.StartAsync(2, vm => vm with { Groups = [vm.GuestCid == 3 ? "red" : "blue"] });
        await using var a = SyntheticGuest.Connect(daemon[0].Socket);
        await using var b = SyntheticGuest.Connect(daemon[1].Socket);
        using var listener = b.Listen(5000);
        var started = DateTime.UtcNow;
        await Assert.ThrowsAsync<GuestConnectionRefusedException>(() => a.ConnectAsync(4, 5000, TimeSpan.FromSeconds(2)));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(1));
        // An unknown CID too.
        await Assert.ThrowsAsync<GuestConnectionRefusedException>(() => a.ConnectAsync(77, 5000, TimeSpan.FromSeconds(2)));
    }

    [Fact]
    public async Task When_a_sibling_vmm_goes_away_the_other_guest_sees_its_streams_reset()
    {
        await using var daemon = await InProcessDaemon.StartAsync(2);
        await using var a = SyntheticGuest.Connect(daemon[0].Socket);
        var b = SyntheticGuest.Connect(daemon[1].Socket);
        using var cts = new CancellationTokenSource(Timeout);
        using var listener = b.Listen(5000);
        var accept = listener.AcceptAsync(cts.Token);
        var client = await a.ConnectAsync(4, 5000, TimeSpan.FromSeconds(2), cts.Token);
        await accept;

        b.Disconnect();
        await WaitUntil(() => client.IsPeerReset, cts.Token);
        await b.DisposeAsync();

        // A fresh VMM on the same socket is a fresh guest: reachable again.
        await using var b2 = SyntheticGuest.Connect(daemon[1].Socket);
        using var listener2 = b2.Listen(5001);
        var accept2 = listener2.AcceptAsync(cts.Token);
        var again = await a.ConnectAsync(4, 5001, TimeSpan.FromSeconds(2), cts.Token);
        var server2 = await accept2;
        await again.WriteAsync(TestPattern.RandomBytes(1000, 3), cts.Token);
        Assert.Equal(TestPattern.RandomBytes(1000, 3), await server2.ReadExactlyAsync(1000, cts.Token));
    }

    [Fact]
    public async Task A_guest_that_ignores_its_siblings_credit_is_reset_and_the_sibling_is_told()
    {
        await using var daemon = await InProcessDaemon.StartAsync(2);
        await using var a = SyntheticGuest.Connect(daemon[0].Socket);
        await using var b = SyntheticGuest.Connect(daemon[1].Socket, new SyntheticGuestOptions { BufAlloc = 16 * 1024 });
        using var cts = new CancellationTokenSource(Timeout);
        using var listener = b.Listen(5000);
        var accept = listener.AcceptAsync(cts.Token);
        var client = await a.ConnectAsync(4, 5000, TimeSpan.FromSeconds(2), cts.Token);
        var server = await accept;

        // Bypass the synthetic guest's own credit check: 64 KiB against a 16 KiB receive buffer.
        var payload = new byte[64 * 1024];
        a.SendPacket(a.MakeHeader(4, client.LocalPort, 5000, VsockOp.Rw, length: (uint)payload.Length), payload);

        await WaitUntil(() => client.IsPeerReset && server.IsPeerReset, cts.Token);
        Assert.True(server.BytesBuffered <= 16 * 1024);
    }

    private static async Task WaitUntil(Func<bool> condition, CancellationToken cancellationToken)
    {
        while (!condition())
            await Task.Delay(20, cancellationToken);
    }
}
