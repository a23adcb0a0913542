using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Vsock.Device.Packets;

/// <summary>
/// <c>struct virtio_vsock_hdr</c>: 44 packed little-endian bytes. This is a plain copy: reading it out of guest
/// memory once and using only the copy is what makes header checks immune to the guest rewriting the header.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VsockHeader
{
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

    public ulong SrcCid;
    public ulong DstCid;
    public uint SrcPort;
    public uint DstPort;
    public uint Len;
    public ushort Type;
    public ushort Op;
    public uint Flags;
    public uint BufAlloc;
    public uint FwdCnt;

    /// <summary>Decodes the first 44 bytes of <paramref name="source"/>.</summary>
    public static VsockHeader Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < VsockConstants.HeaderSize)
            throw new ArgumentException($"a vsock header needs {VsockConstants.HeaderSize} bytes, got {source.Length}", nameof(source));
        return new VsockHeader
        {
            SrcCid = BinaryPrimitives.ReadUInt64LittleEndian(source[SrcCidOffset..]),
            DstCid = BinaryPrimitives.ReadUInt64LittleEndian(source[DstCidOffset..]),
            SrcPort = BinaryPrimitives.ReadUInt32LittleEndian(source[SrcPortOffset..]),
            DstPort = BinaryPrimitives.ReadUInt32LittleEndian(source[DstPortOffset..]),
            Len = BinaryPrimitives.ReadUInt32LittleEndian(source[LenOffset..]),
            Type = BinaryPrimitives.ReadUInt16LittleEndian(source[TypeOffset..]),
            Op = BinaryPrimitives.ReadUInt16LittleEndian(source[OpOffset..]),
            Flags = BinaryPrimitives.ReadUInt32LittleEndian(source[FlagsOffset..]),
            BufAlloc = BinaryPrimitives.ReadUInt32LittleEndian(source[BufAllocOffset..]),
            FwdCnt = BinaryPrimitives.ReadUInt32LittleEndian(source[FwdCntOffset..]),
        };
    }

    /// <summary>Encodes into the first 44 bytes of <paramref name="destination"/>.</summary>
    public readonly void Write(Span<byte> destination)
    {
        if (destination.Length < VsockConstants.HeaderSize)
            throw new ArgumentException($"a vsock header needs {VsockConstants.HeaderSize} bytes, got {destination.Length}", nameof(destination));
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

    /// <summary>For logs: <c>3:1234 -> 2:5000 RW len 100 flags 0 buf_alloc 262144 fwd_cnt 0</c> (type appended unless STREAM).</summary>
    public override readonly string ToString()
    {
        var text = $"{SrcCid}:{SrcPort} -> {DstCid}:{DstPort} {VsockOp.Name(Op)} len {Len} flags {Flags} buf_alloc {BufAlloc} fwd_cnt {FwdCnt}";
        return Type switch
        {
            VsockType.Stream => text,
            VsockType.SeqPacket => text + " type SEQPACKET",
            _ => text + $" type {Type}",
        };
    }
}
