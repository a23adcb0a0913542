using System.Runtime.InteropServices;
using Vsock.Device.VhostUser;
using static Vsock.Device.VhostUser.VhostUserProtocolFeatures;
using R = Vsock.Device.VhostUser.VhostUserRequest;

namespace Vsock.Fuzz.Targets.VhostUser;

/// <summary>
/// Seeds: what QEMU 7.2's vhost-user-vsock-pci sends (as tests/Vsock.Device.Tests/VhostUser/VhostUserQemuSequenceTests
/// replays it: realize, driver start, stop, restart) under each protocol-feature offer, in whole and in split reads,
/// plus a device reset and a few framing errors.
/// </summary>
internal static class VhostUserSeeds
{
    private const ulong QemuProtocolMask = (1UL << 17) - 1;
    private const ulong GuestFeatures = 0x1_6100_0000; // VERSION_1 | NOTIFY_ON_EMPTY | EVENT_IDX | PROTOCOL_FEATURES
    private const ulong U = 0x7f12_3400_0000;
    private const ulong RingArea = 0x100000;
    private static readonly VhostUserMemoryRegion LowRam = Region(0, 0xa0000, U, 0);
    private static readonly VhostUserMemoryRegion HighRam = Region(0xc0000, 0x140000, U + 0xc0000, 0xc0000);

    public static IEnumerable<(string, byte[])> All()
    {
        yield return ("qemu-7.2-rust-vmm-offer", Qemu(0, chunk: 0));
        yield return ("qemu-7.2-reply-ack", Qemu(1, chunk: 0));
        yield return ("qemu-7.2-mem-slots-status", Qemu(2, chunk: 0));
        yield return ("qemu-7.2-split-reads", Qemu(2, chunk: 2));
        yield return ("reset-device", ResetDevice());
        yield return ("framing-errors", FramingErrors());
    }

    /// <param name="offer">The config byte's protocol-feature choice (see <see cref="VhostUserTarget"/>).</param>
    private static byte[] Qemu(int offer, int chunk)
    {
        var offered = offer switch
        {
            0 => VhostUserTarget.RustVmmProtocolFeatures,
            1 => VhostUserTarget.RustVmmProtocolFeatures | (1UL << ReplyAck),
            _ => VhostUserSession.SupportedProtocolFeatures,
        };
        var acked = offered & QemuProtocolMask;
        var replyAck = (acked & (1UL << ReplyAck)) != 0;
        var memSlots = (acked & (1UL << ConfigureMemSlots)) != 0;
        var status = (acked & (1UL << Status)) != 0;
        var s = new Builder(offer, chunk);

        // realize
        s.Send(R.GetFeatures);
        s.Send(R.GetProtocolFeatures);
        s.Send(R.SetProtocolFeatures, U64(acked));
        s.Send(R.GetQueueNum);
        if (memSlots)
            s.Send(R.GetMaxMemSlots);
        s.Send(R.SetOwner);
        s.Send(R.GetFeatures);
        for (uint i = 0; i < 2; i++)
        {
            s.Send(R.SetVringCall, U64(i), fds: 1);
            s.Send(R.SetVringErr, U64(i), fds: 1);
        }
        s.Send(R.GetConfig, Config(0, 8));

        StartDevice(s, replyAck, memSlots, status, nextAvail: 0, firstStart: true);

        // guest reboot: stop, then start again where the rings stopped
        if (status)
            s.Send(R.SetStatus, U64(0));
        for (uint i = 0; i < 2; i++)
            s.Send(R.SetVringEnable, State(i, 0));
        for (uint i = 0; i < 2; i++)
            s.Send(R.GetVringBase, State(i, 0));
        for (uint i = 0; i < 2; i++)
            s.Send(R.SetVringCall, U64(i), fds: 1);
        StartDevice(s, replyAck, memSlots, status, nextAvail: 7, firstStart: false);
        return s.ToArray();
    }

    private static void StartDevice(Builder s, bool replyAck, bool memSlots, bool status, uint nextAvail, bool firstStart)
    {
        s.Send(R.SetFeatures, U64(GuestFeatures));
        if (!memSlots)
        {
            s.Send(R.SetMemTable, MemTable(LowRam, HighRam), fds: 2, needReply: replyAck);
        }
        else if (firstStart)
        {
            // With CONFIGURE_MEM_SLOTS QEMU sends only what changed: nothing on a restart.
            s.Send(R.AddMemReg, SingleRegion(LowRam), fds: 1, needReply: replyAck);
            s.Send(R.AddMemReg, SingleRegion(HighRam), fds: 1, needReply: replyAck);
        }
        for (uint i = 0; i < 2; i++)
        {
            var desc = RingArea + 0x10000 * i;
            s.Send(R.SetVringNum, State(i, 128));
            s.Send(R.SetVringBase, State(i, nextAvail));
            s.Send(R.SetVringAddr, Addr(i, U + desc, U + desc + 0x1000, U + desc + 128 * 16));
            s.Send(R.SetVringKick, U64(i), fds: 1);
        }
        for (uint i = 0; i < 2; i++)
            s.Send(R.SetVringEnable, State(i, 1));
        if (status)
            s.Send(R.SetStatus, U64(0x0f));
        for (uint i = 0; i < 2; i++)
            s.Send(R.SetVringCall, U64(i), fds: 1);
    }

    /// <summary>All features, one ring running, then RESET_DEVICE and a second start with NEED_REPLY everywhere.</summary>
    private static byte[] ResetDevice()
    {
        var s = new Builder(offer: 2, chunk: 0);
        s.Send(R.SetProtocolFeatures, U64(VhostUserSession.SupportedProtocolFeatures));
        s.Send(R.SetOwner, needReply: true);
        for (var round = 0; round < 2; round++)
        {
            s.Send(R.SetFeatures, U64(GuestFeatures), needReply: true);
            s.Send(R.SetMemTable, MemTable(Region(0, 0x20000, U)), fds: 1, needReply: true);
            s.Send(R.SetVringNum, State(1, 64), needReply: true);
            s.Send(R.SetVringAddr, Addr(1, U + 0x1000, U + 0x3000, U + 0x2000), needReply: true);
            s.Send(R.SetVringKick, U64(1), fds: 1, needReply: true);
            s.Send(R.SetVringEnable, State(1, 1), needReply: true);
            s.Send(R.GetStatus);
            s.Send(R.ResetDevice, needReply: true);
        }
        return s.ToArray();
    }

    /// <summary>A valid start, then one message per framing rule broken, each in its own segment.</summary>
    private static byte[] FramingErrors()
    {
        var s = new Builder(offer: 0, chunk: 0);
        s.Send(R.GetFeatures);
        s.Raw(Header(R.GetFeatures, flags: 2, size: 0)); // protocol version 2
        s.Raw(Header(R.GetFeatures, flags: 1 | 4, size: 0)); // REPLY from the front-end
        s.Raw(Header(R.SetFeatures, flags: 1, size: 4097)); // oversized payload
        s.Raw([.. Header(R.SetOwner, flags: 1, size: 0)], fds: 33); // too many fds
        return s.ToArray();
    }

    private sealed class Builder
    {
        private readonly FuzzInputWriter _w = new();
        private readonly int _chunk;

        public Builder(int offer, int chunk)
        {
            _chunk = chunk;
            _w.U8(offer);
        }

        public void Send(R request, byte[]? payload = null, int fds = 0, bool needReply = false)
        {
            payload ??= [];
            var message = new byte[VhostUserCodec.HeaderSize + payload.Length];
            VhostUserCodec.EncodeRequest(request, payload, message, needReply ? VhostUserCodec.NeedReplyFlag : 0);
            Raw(message, fds);
        }

        public void Raw(byte[] bytes, int fds = 0) => _w.U8(fds | (_chunk << 6)).U16(bytes.Length).Bytes(bytes);

        public byte[] ToArray() => _w.ToArray();
    }

    private static byte[] Header(R request, uint flags, uint size) =>
        Bytes(new VhostUserHeader { Request = request, Flags = flags, Size = size });

    private static byte[] Bytes<T>(T value) where T : unmanaged => MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)).ToArray();

    private static byte[] U64(ulong value) => Bytes(value);

    private static byte[] State(uint index, uint num) => Bytes(new VhostUserVringState { Index = index, Num = num });

    private static byte[] Addr(uint index, ulong desc, ulong used, ulong avail) =>
        Bytes(new VhostUserVringAddr { Index = index, DescUserAddress = desc, UsedUserAddress = used, AvailUserAddress = avail });

    private static VhostUserMemoryRegion Region(ulong gpa, ulong size, ulong uaddr, ulong offset = 0) =>
        new() { GuestPhysicalAddress = gpa, MemorySize = size, UserAddress = uaddr, MmapOffset = offset };

    private static byte[] MemTable(params VhostUserMemoryRegion[] regions) =>
        [.. Bytes(new VhostUserMemoryTableHeader { RegionCount = (uint)regions.Length }), .. regions.SelectMany(Bytes)];

    private static byte[] SingleRegion(VhostUserMemoryRegion region) => Bytes(new VhostUserSingleMemoryRegion { Region = region });

    private static byte[] Config(uint offset, uint size) =>
        [.. Bytes(new VhostUserConfigHeader { Offset = offset, Size = size }), .. new byte[size]];
}
