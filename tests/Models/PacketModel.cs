using Vsock.Device.Memory;
using Vsock.Device.Packets;
using Vsock.Device.Virtio;

namespace Vsock.Models;

/// <summary>
/// The virtio-vsock packet rules over a descriptor chain, written the obvious way over a naive byte-stream read of
/// the chain: the oracle <see cref="VsockPacket.TryFromTxChain"/> and <see cref="VsockPacket.TryFromRxChain"/> are
/// checked against by the randomized tests and the virtqueue fuzz target (one model for both, linked into each).
/// The header's 44 bytes and the 64 KiB payload limit are written out, not taken from the code under test.
/// </summary>
internal static unsafe class PacketModel
{
    private const int HeaderSize = 44;
    private const uint MaxPayload = 65536;

    /// <summary>A header with every field distinct, for the setters.</summary>
    public static readonly VsockHeader Pattern = new()
    {
        SrcCid = 2, DstCid = 3, SrcPort = 0x0102_0304, DstPort = 0x0506_0708, Len = 0,
        Type = VsockType.Stream, Op = VsockOp.Request, Flags = 1, BufAlloc = 0x4_0000, FwdCnt = 0x0a0b_0c0d,
    };

    /// <summary>The TX rules in the obvious order: the error, and for a good chain its header and payload bytes.</summary>
    public static VsockPacketError Tx(GuestMemory memory, GuestBuffer[] buffers, uint maxDataSize, out VsockHeader header, out byte[]? payload)
    {
        header = default;
        payload = null;
        if (buffers.Length == 0)
            return VsockPacketError.DescriptorChainTooShort;
        if (buffers.Any(b => b.DeviceWritable))
            return VsockPacketError.UnexpectedWriteOnlyDescriptor;
        var total = buffers.Aggregate(0UL, (s, b) => s + b.Length);
        if (total > uint.MaxValue)
            return VsockPacketError.DescriptorLengthTooLong;
        if (total < HeaderSize)
            return VsockPacketError.DescriptorLengthTooSmall;
        var raw = ReadStream(memory, buffers, HeaderSize);
        if (raw is null)
            return VsockPacketError.InvalidMemoryAccess;
        header = VsockHeader.Read(raw);
        if (header.Len > maxDataSize || header.Len > MaxPayload)
            return VsockPacketError.InvalidHeaderLen;
        if (total < HeaderSize + (ulong)header.Len)
            return VsockPacketError.DescriptorLengthTooSmall;
        var stream = ReadStream(memory, buffers, HeaderSize + (ulong)header.Len);
        if (stream is null)
            return VsockPacketError.InvalidMemoryAccess;
        payload = stream[HeaderSize..];
        return VsockPacketError.None;
    }

    /// <summary>The RX rules: the error, and for a good chain the payload room after the header.</summary>
    public static VsockPacketError Rx(GuestMemory memory, GuestBuffer[] buffers, out uint capacity)
    {
        capacity = 0;
        if (buffers.Length == 0)
            return VsockPacketError.DescriptorChainTooShort;
        if (buffers.Any(b => !b.DeviceWritable))
            return VsockPacketError.UnexpectedReadOnlyDescriptor;
        var total = buffers.Aggregate(0UL, (s, b) => s + b.Length);
        if (total > uint.MaxValue)
            return VsockPacketError.DescriptorLengthTooLong;
        if (total < HeaderSize)
            return VsockPacketError.DescriptorLengthTooSmall;
        capacity = (uint)Math.Min(total - HeaderSize, MaxPayload);
        if (ReadStream(memory, buffers, HeaderSize + (ulong)capacity) is null)
        {
            capacity = 0;
            return VsockPacketError.InvalidMemoryAccess;
        }
        return VsockPacketError.None;
    }

    /// <summary>The first <paramref name="length"/> bytes of the chain, or null if one of them is outside memory.</summary>
    public static byte[]? ReadStream(GuestMemory memory, GuestBuffer[] buffers, ulong length)
    {
        var result = new byte[length];
        ulong done = 0;
        foreach (var (address, n) in Prefix(buffers, length))
        {
            if (!memory.TryGetHostPointer(address, n, out var p))
                return null;
            new ReadOnlySpan<byte>(p, (int)n).CopyTo(result.AsSpan((int)done));
            done += n;
        }
        return done == length ? result : null;
    }

    /// <summary>The pieces of the buffers that hold the first <paramref name="length"/> bytes of the stream.</summary>
    public static IEnumerable<(ulong Address, ulong Length)> Prefix(GuestBuffer[] buffers, ulong length)
    {
        foreach (var b in buffers)
        {
            var n = Math.Min(b.Length, length);
            length -= n;
            if (n != 0)
                yield return (b.Address, n);
        }
    }

    /// <summary>Whether two of the buffers holding the first <paramref name="length"/> stream bytes share a guest byte.</summary>
    public static bool Overlap(GuestBuffer[] buffers, ulong length)
    {
        var pieces = Prefix(buffers, length).Select(p => (Start: p.Address, End: p.Address + p.Length)).OrderBy(p => p.Start).ToList();
        for (var i = 1; i < pieces.Count; i++)
        {
            if (pieces[i].Start < pieces[i - 1].End)
                return true;
        }
        return false;
    }
}
