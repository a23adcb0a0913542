using System.Net.Sockets;
using Vsock.Testing;
using Vsock.Testing.Packets;

namespace Vsock.Integration.Tests;

/// <summary>
/// A guest that writes nonsense into its TX ring. After each attack: every chain it posted comes
/// back through the used ring, the same VM still serves normal connections both ways, and a
/// second VM of the same daemon never noticed.
/// </summary>
public sealed class HostileGuestTests
{
    private static readonly TimeSpan Drain = TimeSpan.FromSeconds(5);

    [Fact]
    public Task Descriptors_outside_guest_memory() => AttackAsync(async (guest, _) =>
    {
        var scratch = guest.AllocateScratch(256);
        guest.WriteMemory(scratch, guest.MakeHeader(2, 1234, 1234, VsockOp.Rw, length: 16).ToBytes());
        guest.SendRawTx(RawDescriptor.Readable(guest.RamSize + 0x1000, 44));                        // header beyond RAM
        guest.SendRawTx(RawDescriptor.Readable(guest.RamSize - 20, 44));                            // header straddling the end
        guest.SendRawTx(RawDescriptor.Readable(scratch, 44, next: 1), RawDescriptor.Readable(ulong.MaxValue - 7, 16)); // payload wraps 2^64
        guest.SendRawTx(RawDescriptor.Readable(scratch, 44, next: 1), RawDescriptor.Readable(scratch + 44, uint.MaxValue));
        await Task.CompletedTask;
    });

    [Fact]
    public Task Descriptor_loops_and_bad_next_indices() => AttackAsync(async (guest, _) =>
    {
        var scratch = guest.AllocateScratch(256);
        guest.WriteMemory(scratch, guest.MakeHeader(2, 1234, 1234, VsockOp.Rw, length: 16).ToBytes());
        // header -> payload -> header -> ...
        guest.SendRawTx(
            new RawDescriptor(scratch, 44, RawDescriptor.FlagNext, 1),
            new RawDescriptor(scratch + 44, 8, RawDescriptor.FlagNext, 0));
        // a descriptor chained to itself
        guest.SendRawTx(new RawDescriptor(scratch, 44, RawDescriptor.FlagNext, 0));
        // next beyond the queue
        guest.SendRawTx(new RawDescriptor(scratch, 44, RawDescriptor.FlagNext, 0xffff, NextIsAbsolute: true));
        await Task.CompletedTask;
    });

    [Fact]
    public Task Wrong_descriptor_directions_and_bogus_indirect() => AttackAsync(async (guest, _) =>
    {
        var scratch = guest.AllocateScratch(256);
        guest.WriteMemory(scratch, guest.MakeHeader(2, 1234, 1234, VsockOp.Rw, length: 16).ToBytes());
        guest.SendRawTx(RawDescriptor.Writable(scratch, 44));                                            // device-writable header
        guest.SendRawTx(RawDescriptor.Readable(scratch, 44, next: 1), RawDescriptor.Writable(scratch + 44, 16)); // writable payload
        guest.SendRawTx(RawDescriptor.Readable(scratch, 20));                                            // header too short
        guest.SendRawTx(new RawDescriptor(scratch, 44, RawDescriptor.FlagIndirect));                     // INDIRECT never negotiated, table is garbage
        await Task.CompletedTask;
    });

    [Fact]
    public Task Unusable_rx_buffers_come_back_empty_and_the_data_takes_the_next_good_ones() => AttackAsync(async (guest, daemon) =>
    {
        var scratch = guest.AllocateScratch(4096);
        ushort[] bad =
        [
            guest.PostRawRx(RawDescriptor.Writable(guest.RamSize + 0x1000, 4096)),                    // outside RAM
            guest.PostRawRx(RawDescriptor.Writable(guest.RamSize - 100, 4096)),                       // straddling the end
            guest.PostRawRx(RawDescriptor.Readable(scratch, 4096)),                                   // device-readable
            guest.PostRawRx(RawDescriptor.Writable(scratch, 20)),                                     // shorter than a header
            guest.PostRawRx(RawDescriptor.Writable(scratch, 44, next: 1), RawDescriptor.Writable(ulong.MaxValue - 7, 4096)), // data wraps 2^64
        ];
        // 1 MiB host → guest needs ~260 RX buffers: the device reaches the raw ones behind the 122 stocked.
        using var cts = new CancellationTokenSource(Scenario.Timeout);
        using var listener = guest.Listen(4444);
        using var host = await HostVsock.ConnectAsync(daemon[0].UdsPath!, 4444, Scenario.Timeout);
        var stream = await listener.AcceptAsync(cts.Token);
        var data = TestPattern.RandomBytes(1 << 20, 9);
        var send = host.SendAllAsync(data, cts.Token);
        Assert.Equal(Scenario.Hash(data), Scenario.Hash(await stream.ReadExactlyAsync(data.Length, cts.Token)));
        await send;
        var used = guest.RawRxUsed;
        Assert.Equal(bad.Order(), used.Select(u => u.Head).Order());
        Assert.All(used, u => Assert.Equal(0u, u.UsedLength));
        await stream.CloseAsync();
    }, SyntheticGuestOptions.Default with { RxReserve = 6 });

    [Fact]
    public Task Spoofed_source_cid_is_not_let_through() => AttackAsync(async (guest, daemon) =>
    {
        using var hostListener = HostVsock.Listen(daemon[0].UdsPath!, 3333);
        foreach (var spoofed in new ulong[] { 4, 2, 99, ulong.MaxValue })
            guest.SendPacket(guest.MakeHeader(2, 50000, 3333, VsockOp.Request) with { SrcCid = spoofed });
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => (await hostListener.AcceptAsync(cts.Token)).Dispose());
        Assert.DoesNotContain(guest.Received, p => p.Header.Operation == VsockOp.Response);
    });

    [Fact]
    public Task Header_len_beyond_the_buffer() => AttackAsync(async (guest, daemon) =>
    {
        using var hostListener = HostVsock.Listen(daemon[0].UdsPath!, 3334);
        var stream = await guest.ConnectAsync(2, 3334, Scenario.Timeout);
        using var host = await hostListener.AcceptAsync();
        var rw = guest.MakeHeader(2, stream.LocalPort, 3334, VsockOp.Rw);
        guest.SendPacket(rw with { Len = 1000 }, new byte[10]);
        guest.SendPacket(rw with { Len = uint.MaxValue }, new byte[10]);
        guest.SendPacket(rw with { Len = 64 * 1024 + 1 }, new byte[10]);
        await guest.WaitForTxDrainedAsync(Drain);
        // Whatever the daemon did with the stream, it must not have invented bytes for the host.
        var buffer = new byte[16];
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        try
        {
            var n = await host.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            Assert.Equal(0, n);
        }
        catch (OperationCanceledException)
        {
            // nothing arrived: fine
        }
        catch (SocketException)
        {
            // reset: fine
        }
    });

    [Fact]
    public Task Credit_violation_by_a_flooding_guest() => AttackAsync(async (guest, daemon) =>
    {
        using var hostListener = HostVsock.Listen(daemon[0].UdsPath!, 3335);
        var stream = await guest.ConnectAsync(2, 3335, Scenario.Timeout);
        using var host = await hostListener.AcceptAsync(); // never reads
        var rw = guest.MakeHeader(2, stream.LocalPort, 3335, VsockOp.Rw, length: 64 * 1024);
        var payload = new byte[64 * 1024];
        // 8 MiB regardless of credit, in batches the TX ring can hold.
        for (var batch = 0; batch < 4; batch++)
        {
            for (var i = 0; i < 32; i++)
                guest.SendPacket(rw, payload);
            await guest.WaitForTxDrainedAsync(Drain);
        }
    });

    /// <summary>Runs <paramref name="attack"/> on VM 0 of a two-VM daemon, then checks the aftermath.</summary>
    private static async Task AttackAsync(Func<SyntheticGuest, InProcessDaemon, Task> attack, SyntheticGuestOptions? victimOptions = null)
    {
        await using var daemon = await InProcessDaemon.StartAsync(vmCount: 2);
        await using var victim = SyntheticGuest.Connect(daemon[0].Socket, victimOptions ?? SyntheticGuestOptions.Default);
        await using var bystander = SyntheticGuest.Connect(daemon[1].Socket);

        await attack(victim, daemon);

        await victim.WaitForTxDrainedAsync(Drain);
        Assert.Equal(victim.Statistics.PacketsSent, victim.UsedTxCount);
        Assert.Null(victim.DriverFault);
        Assert.Empty(victim.Violations);

        await Scenario.VmServesAsync(victim, daemon[0].UdsPath!);
        await Scenario.VmServesAsync(bystander, daemon[1].UdsPath!);
        Scenario.AssertClean(bystander);
        Assert.DoesNotContain(bystander.Received, p => p.Header.SrcCid != 2 || p.Header.DstCid != bystander.GuestCid);
    }
}
