using System.Buffers.Binary;
using Vsock.Device.Interop;
using Vsock.Device.Memory;
using Vsock.Testing;
using Vsock.Testing.Packets;
using Vsock.Testing.VhostUser;

namespace Vsock.Integration.Tests;

/// <summary>
/// ADD_MEM_REG / REM_MEM_REG while a stream moves data (QEMU's memory hotplug): guest memory only changes between
/// the device's turns, so no turn reads or writes through a stale mapping. RX buffers posted in an added region are
/// used there; buffers left in a removed region are handed back empty, never written; the other VM of the daemon
/// does not notice.
/// </summary>
public sealed class MemoryHotplugTests
{
    private const ulong RegionGpa = 0x1_0000_0000;
    private const ulong RegionSize = 1 << 20;
    private const ulong RegionUserAddress = 0x7e00_0000_0000;
    private const uint UnknownPort = 9999;

    [Fact]
    public async Task Memory_regions_added_and_removed_during_traffic_leave_no_stale_view()
    {
        await using var daemon = await InProcessDaemon.StartAsync(2);
        var options = new SyntheticGuestOptions { ExtraProtocolFeatures = VhostUserProtocolFeatures.ConfigureMemSlots, RecordReceived = false };
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket, options);
        await using var other = SyntheticGuest.Connect(daemon[1].Socket);
        Assert.NotEqual(0ul, guest.ProtocolFeatures & VhostUserProtocolFeatures.ConfigureMemSlots);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        using var regionFd = MemFd.Create("hotplug", (long)RegionSize);
        using var region = MmapMemoryMapper.Instance.Map(regionFd, 0, RegionGpa, RegionSize, RegionUserAddress);

        using var listener = guest.Listen(5300);
        using var host = await HostVsock.ConnectAsync(daemon[0].UdsPath!, 5300, Scenario.Timeout);
        var stream = await listener.AcceptAsync(cts.Token);
        var toGuest = TestPattern.RandomBytes(32 << 20, 21); // long enough to still flow when the guest starves its RX ring
        var toHost = TestPattern.RandomBytes(16 << 20, 22);
        var hostSend = host.SendAllAsync(toGuest, cts.Token);
        var guestReceive = stream.ReadExactlyAsync(toGuest.Length, cts.Token);
        var guestSend = stream.WriteAsync(toHost, cts.Token).AsTask();
        var hostReceive = host.ReadExactlyAsync(toHost.Length, cts.Token);
        var traffic = Task.WhenAll(hostSend, guestReceive, guestSend, hostReceive);

        // 1. Regions come and go under the running stream.
        var cycles = 0;
        for (; cycles < 40 && !traffic.IsCompleted; cycles++)
        {
            AddRegion(guest, regionFd);
            RemoveRegion(guest);
        }
        Assert.True(cycles >= 5, $"only {cycles} add/remove cycles ran while the stream moved data");

        // 2. RX buffers in an added region are used there.
        AddRegion(guest, regionFd);
        await StarveRxAsync(guest, cts.Token);
        var bogusPorts = new uint[] { 7001, 7002, 7003 };
        await ProvokeRepliesAsync(guest, bogusPorts, cts.Token);
        var heads = bogusPorts.Select((_, i) => guest.PostRawRx(RawDescriptor.Writable(RegionGpa + (ulong)i * 4096, 4096))).ToList();
        await Scenario.WaitUntilAsync(() => guest.RawRxUsed.Count == heads.Count, cts.Token);
        Assert.Equal(heads, guest.RawRxUsed.Select(u => u.Head));
        Assert.All(guest.RawRxUsed, u => Assert.Equal((uint)VsockHeader.Size, u.UsedLength));
        var replies = heads.Select((_, i) => VsockHeader.ReadFrom(RegionSpan(region, (ulong)i * 4096, VsockHeader.Size))).ToList();
        Assert.All(replies, r => Assert.Equal(VsockOp.Rst, r.Operation));
        Assert.Equal(bogusPorts, replies.Select(r => r.DstPort));
        Assert.All(replies, r => Assert.Equal(UnknownPort, r.SrcPort));

        // 3. The region goes while buffers in it are still posted: they come back empty, nothing is written there.
        RemoveRegion(guest);
        RegionSpan(region, 0, 3 * 4096).Fill(0xEE);
        await ProvokeRepliesAsync(guest, [7004], cts.Token);
        var stale = guest.PostRawRx(RawDescriptor.Writable(RegionGpa, 4096));
        await Scenario.WaitUntilAsync(() => guest.RawRxUsed.Count == heads.Count + 1, cts.Token);
        Assert.Equal((stale, 0u), guest.RawRxUsed[^1]);
        Assert.False(RegionSpan(region, 0, 3 * 4096).ContainsAnyExcept((byte)0xEE));

        // 4. The guest stocks its ring again: the stream finishes intact, and the other VM never noticed.
        guest.ResumeRxRefill();
        await traffic;
        Assert.Equal(Scenario.Hash(toGuest), Scenario.Hash(await guestReceive));
        Assert.Equal(Scenario.Hash(toHost), Scenario.Hash(await hostReceive));
        Scenario.AssertClean(guest);
        await Scenario.VmServesAsync(other, daemon[1].UdsPath!);
        await Scenario.VmServesAsync(guest, daemon[0].UdsPath!);
        Scenario.AssertClean(other);
    }

    /// <summary>The guest stops posting RX buffers and waits until the stream has used up those it posted.</summary>
    private static async Task StarveRxAsync(SyntheticGuest guest, CancellationToken ct)
    {
        guest.PauseRxRefill();
        await Scenario.WaitUntilAsync(() => guest.RxBuffersPosted == 0, ct);
    }

    /// <summary>
    /// RW packets on no stream: the device owes the guest an RST for each, and its own replies go out before any
    /// stream data, so they take the next RX buffers posted.
    /// </summary>
    private static async Task ProvokeRepliesAsync(SyntheticGuest guest, uint[] ports, CancellationToken ct)
    {
        foreach (var port in ports)
            guest.SendPacket(guest.MakeHeader(2, port, UnknownPort, VsockOp.Rw, length: 1), [0]);
        // The device takes TX chains in order: once ours are back, its replies wait for RX buffers.
        var posted = guest.Statistics.PacketsSent;
        await Scenario.WaitUntilAsync(() => guest.UsedTxCount >= posted, ct);
    }

    private static unsafe Span<byte> RegionSpan(MemoryRegion region, ulong offset, int length) =>
        new((byte*)region.HostAddress + offset, length);

    private static byte[] Region()
    {
        var payload = new byte[40]; // VhostUserSingleMemoryRegion: padding, then gpa, size, uaddr, mmap offset
        BinaryPrimitives.WriteUInt64LittleEndian(payload.AsSpan(8), RegionGpa);
        BinaryPrimitives.WriteUInt64LittleEndian(payload.AsSpan(16), RegionSize);
        BinaryPrimitives.WriteUInt64LittleEndian(payload.AsSpan(24), RegionUserAddress);
        return payload;
    }

    private static void AddRegion(SyntheticGuest guest, Microsoft.Win32.SafeHandles.SafeFileHandle fd)
    {
        guest.SendRequest(VhostUserRequest.AddMemReg, Region(), [(int)fd.DangerousGetHandle()], needReply: true);
        ExpectAck(guest, VhostUserRequest.AddMemReg);
    }

    private static void RemoveRegion(SyntheticGuest guest)
    {
        guest.SendRequest(VhostUserRequest.RemMemReg, Region(), [], needReply: true);
        ExpectAck(guest, VhostUserRequest.RemMemReg);
    }

    private static void ExpectAck(SyntheticGuest guest, uint request)
    {
        var reply = guest.ReceiveReply(Scenario.Timeout) ?? throw new IOException("the daemon hung up");
        Assert.Equal(request, reply.Request);
        Assert.Equal(0ul, BinaryPrimitives.ReadUInt64LittleEndian(reply.Payload));
    }
}
