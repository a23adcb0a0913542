using System.Buffers.Binary;

namespace Vsock.Testing.Packets;

/// <summary>
/// <c>struct virtio_vsock_hdr</c> (virtio spec 5.10.6): 44 bytes, packed, little-endian.
/// A plain value the tests can build with any field values, including invalid ones. Written from the spec apart
/// from the daemon's <c>Vsock.Device.Packets.VsockHeader</c> on purpose: the synthetic guest is the other end the
/// daemon is tested against, so a mistake in the daemon's codec must not be shared by the guest's.
/// </summary>
public record struct VsockHeader(
    ulong SrcCid,
    ulong DstCid,
    uint SrcPort,
    uint DstPort,
    uint Len,
    ushort Type,
    ushort Op,
    uint Flags,
    uint BufAlloc,
    uint FwdCnt)
{
    public const int Size = 44;

    public const int SrcCidOffset = 0;
    public const int DstCidOffset = 8;
    public const int SrcPortOffset = 16;
    public const int DstPortOffset = 20;
    public const int LenOffset = 24;
    public const int TypeOffset = 28;
    public const int OpOffset = 30;
    public const int FlagsOffset = 32;
    public const int BufAllocOffset = 36;
    public const int FwdCntOffset = 40;

    public readonly VsockOp Operation => (VsockOp)Op;

    public readonly void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size)
            throw new ArgumentException($"a vsock header needs {Size} bytes", nameof(destination));
        BinaryPrimitives.WriteUInt64LittleEndian(destination[SrcCidOffset..], SrcCid);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[DstCidOffset..], DstCid);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[SrcPortOffset..], SrcPort);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[DstPortOffset..], DstPort);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[LenOffset..], Len);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[TypeOffset..], Type);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[OpOffset..], Op);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[FlagsOffset..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[BufAllocOffset..], BufAlloc);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[FwdCntOffset..], FwdCnt);
    }

    public static VsockHeader ReadFrom(ReadOnlySpan<byte> source)
    {
        if (source.Length < Size)
            throw new ArgumentException($"a vsock header needs {Size} bytes", nameof(source));
        return new VsockHeader(
            BinaryPrimitives.ReadUInt64LittleEndian(source[SrcCidOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(source[DstCidOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[SrcPortOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[DstPortOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[LenOffset..]),
            BinaryPrimitives.ReadUInt16LittleEndian(source[TypeOffset..]),
            BinaryPrimitives.ReadUInt16LittleEndian(source[OpOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[FlagsOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[BufAllocOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[FwdCntOffset..]));
    }

    public readonly byte[] ToBytes()
    {
        var bytes = new byte[Size];
        WriteTo(bytes);
        return bytes;
    }

    public override readonly string ToString() =>
        $"{Operation} {SrcCid}:{SrcPort} -> {DstCid}:{DstPort} len {Len} type {Type} flags 0x{Flags:x} buf_alloc {BufAlloc} fwd_cnt {FwdCnt}";
}

/// <summary>virtio-vsock operations (spec 5.10.6).</summary>
public enum VsockOp : ushort
{
    Invalid = 0,
    Request = 1,
    Response = 2,
    Rst = 3,
    Shutdown = 4,
    Rw = 5,
    CreditUpdate = 6,
    CreditRequest = 7,
}

/// <summary>Wire constants of virtio-vsock as Linux uses them (the SHUTDOWN flags are masks 1 and 2).</summary>
public static class VsockWire
{
    public const ushort TypeStream = 1;
    public const ushort TypeSeqpacket = 2;
    public const uint ShutdownReceive = 1;
    public const uint ShutdownSend = 2;
    public const uint ShutdownBoth = ShutdownReceive | ShutdownSend;
    public const ulong HostCid = 2;
    /// <summary>VIRTIO_VSOCK_SEQ_EOM: the last RW packet of a SEQPACKET message.</summary>
    public const uint SeqEom = 1;
    /// <summary>VIRTIO_VSOCK_SEQ_EOR: the message ends a record (the sender's MSG_EOR).</summary>
    public const uint SeqEor = 2;
}
