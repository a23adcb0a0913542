using System.Buffers.Binary;
using Vsock.Device.Memory;
using Vsock.Device.Virtio;

namespace Vsock.Device.Packets;

/// <summary>
/// A vsock packet over a descriptor chain in guest memory, or over two plain buffers (host side, tests).
/// Mirrors the virtio-vsock crate's <c>VsockPacket</c>, except that the chain is treated as one byte stream:
/// header = bytes 0..44, payload = bytes 44..44+len, split across any number of descriptors. (The crate only
/// knows "one descriptor" or "header + one data descriptor"; Linux ≥ 6.17 builds multi-descriptor TX payloads.)
///
/// Getters read a copy of the header taken once at parse time, so the guest rewriting the header afterwards
/// changes nothing we decide on. Setters update that copy and the header bytes of an RX chain or a plain
/// buffer. On a TX chain setters only update the copy: the device never writes device-readable buffers
/// (virtio 1.2 §2.7.4).
///
/// Lives no longer than the chain it was parsed from (the queue's scratch array) and the guest memory.
/// </summary>
public unsafe ref struct VsockPacket
{
    private readonly GuestMemory? _memory;        // null: backed by _headerBytes/_dataBytes
    private readonly ReadOnlySpan<GuestBuffer> _buffers;
    private readonly Span<byte> _headerBytes;
    private readonly Span<byte> _dataBytes;
    private readonly int _dataIndex;               // where the payload starts in _buffers
    private readonly uint _dataOffset;
    private readonly uint _dataCapacity;
    private readonly bool _headerWritable;
    private readonly bool _dataWritable;
    private VsockHeader _header;

    private VsockPacket(GuestMemory memory, ReadOnlySpan<GuestBuffer> buffers, VsockHeader header, uint dataCapacity, bool writable)
    {
        _memory = memory;
        _buffers = buffers;
        _header = header;
        _dataCapacity = dataCapacity;
        _headerWritable = writable;
        _dataWritable = writable;
        var index = 0;
        uint offset = 0;
        Advance(buffers, ref index, ref offset, VsockConstants.HeaderSize);
        _dataIndex = index;
        _dataOffset = offset;
    }

    private VsockPacket(Span<byte> header, Span<byte> data)
    {
        _headerBytes = header;
        _dataBytes = data;
        _header = VsockHeader.Read(header);
        _dataCapacity = (uint)data.Length;
        _headerWritable = true;
        _dataWritable = true;
    }

    /// <summary>
    /// Parses a guest→device (TX) chain. Every descriptor must be device-readable; the chain must hold the header
    /// and then <c>len</c> payload bytes (bytes beyond that are ignored); <c>len</c> must not exceed
    /// <paramref name="maxDataSize"/> nor <see cref="VsockConstants.MaxPacketPayload"/>. <c>len</c> 0: no payload.
    /// </summary>
    public static VsockPacketError TryFromTxChain(GuestMemory memory, scoped in DescriptorChain chain, uint maxDataSize, out VsockPacket packet)
    {
        ArgumentNullException.ThrowIfNull(memory);
        packet = default;
        var buffers = chain.Buffers;
        if (buffers.IsEmpty)
            return VsockPacketError.DescriptorChainTooShort;
        ulong total = 0;
        foreach (var b in buffers)
        {
            if (b.DeviceWritable)
                return VsockPacketError.UnexpectedWriteOnlyDescriptor;
            total += b.Length;
        }
        if (total > uint.MaxValue)
            return VsockPacketError.DescriptorLengthTooLong;
        if (total < VsockConstants.HeaderSize)
            return VsockPacketError.DescriptorLengthTooSmall;
        if (!IsMapped(memory, buffers, VsockConstants.HeaderSize))
            return VsockPacketError.InvalidMemoryAccess;

        Span<byte> raw = stackalloc byte[VsockConstants.HeaderSize];
        var index = 0;
        uint offset = 0;
        Gather(memory, buffers, ref index, ref offset, raw);
        var header = VsockHeader.Read(raw);

        if (header.Len > maxDataSize || header.Len > VsockConstants.MaxPacketPayload)
            return VsockPacketError.InvalidHeaderLen;
        var end = VsockConstants.HeaderSize + (ulong)header.Len;
        if (total < end)
            return VsockPacketError.DescriptorLengthTooSmall;
        if (!IsMapped(memory, buffers, end))
            return VsockPacketError.InvalidMemoryAccess;

        packet = new VsockPacket(memory, buffers, header, header.Len, writable: false);
        return VsockPacketError.None;
    }

    /// <summary>
    /// Parses a device→guest (RX) chain. Every descriptor must be device-writable and together hold at least the
    /// header; the payload room is the rest, capped at <see cref="VsockConstants.MaxPacketPayload"/> (0 allowed).
    /// The header copy starts zeroed; guest memory is neither read nor cleared.
    /// </summary>
    public static VsockPacketError TryFromRxChain(GuestMemory memory, scoped in DescriptorChain chain, out VsockPacket packet)
    {
        ArgumentNullException.ThrowIfNull(memory);
        packet = default;
        var buffers = chain.Buffers;
        if (buffers.IsEmpty)
            return VsockPacketError.DescriptorChainTooShort;
        ulong total = 0;
        foreach (var b in buffers)
        {
            if (!b.DeviceWritable)
                return VsockPacketError.UnexpectedReadOnlyDescriptor;
            total += b.Length;
        }
        if (total > uint.MaxValue)
            return VsockPacketError.DescriptorLengthTooLong;
        if (total < VsockConstants.HeaderSize)
            return VsockPacketError.DescriptorLengthTooSmall;
        var capacity = (uint)Math.Min(total - VsockConstants.HeaderSize, VsockConstants.MaxPacketPayload);
        if (!IsMapped(memory, buffers, VsockConstants.HeaderSize + (ulong)capacity))
            return VsockPacketError.InvalidMemoryAccess;

        packet = new VsockPacket(memory, buffers, default(VsockHeader), capacity, writable: true);
        return VsockPacketError.None;
    }

    /// <summary>A packet over host-side buffers: <paramref name="header"/> must be exactly 44 bytes and is decoded now.</summary>
    public static VsockPacket FromBuffers(Span<byte> header, Span<byte> data)
    {
        if (header.Length != VsockConstants.HeaderSize)
            throw new ArgumentException($"a vsock header is exactly {VsockConstants.HeaderSize} bytes, got {header.Length}", nameof(header));
        return new VsockPacket(header, data);
    }

    /// <summary>The cached header copy.</summary>
    public readonly VsockHeader Header => _header;

    public ulong SrcCid
    {
        readonly get => _header.SrcCid;
        set { _header.SrcCid = value; WriteField64(VsockHeader.SrcCidOffset, value); }
    }

    public ulong DstCid
    {
        readonly get => _header.DstCid;
        set { _header.DstCid = value; WriteField64(VsockHeader.DstCidOffset, value); }
    }

    public uint SrcPort
    {
        readonly get => _header.SrcPort;
        set { _header.SrcPort = value; WriteField32(VsockHeader.SrcPortOffset, value); }
    }

    public uint DstPort
    {
        readonly get => _header.DstPort;
        set { _header.DstPort = value; WriteField32(VsockHeader.DstPortOffset, value); }
    }

    public uint Len
    {
        readonly get => _header.Len;
        set { _header.Len = value; WriteField32(VsockHeader.LenOffset, value); }
    }

    public ushort Type
    {
        readonly get => _header.Type;
        set { _header.Type = value; WriteField16(VsockHeader.TypeOffset, value); }
    }

    public ushort Op
    {
        readonly get => _header.Op;
        set { _header.Op = value; WriteField16(VsockHeader.OpOffset, value); }
    }

    public uint Flags
    {
        readonly get => _header.Flags;
        set { _header.Flags = value; WriteField32(VsockHeader.FlagsOffset, value); }
    }

    public uint BufAlloc
    {
        readonly get => _header.BufAlloc;
        set { _header.BufAlloc = value; WriteField32(VsockHeader.BufAllocOffset, value); }
    }

    public uint FwdCnt
    {
        readonly get => _header.FwdCnt;
        set { _header.FwdCnt = value; WriteField32(VsockHeader.FwdCntOffset, value); }
    }

    /// <summary>ORs <paramref name="flag"/> into <see cref="Flags"/>.</summary>
    public void SetFlag(uint flag) => Flags = _header.Flags | flag;

    /// <summary>Replaces the whole header (one 44-byte scatter).</summary>
    public void SetHeader(in VsockHeader header)
    {
        _header = header;
        if (!_headerWritable)
            return;
        Span<byte> raw = stackalloc byte[VsockConstants.HeaderSize];
        header.Write(raw);
        WriteHeaderBytes(0, raw);
    }

    /// <summary>Replaces the whole header from its wire form; <paramref name="raw"/> must be exactly 44 bytes.</summary>
    public VsockPacketError SetHeaderFromRaw(ReadOnlySpan<byte> raw)
    {
        if (raw.Length != VsockConstants.HeaderSize)
            return VsockPacketError.InvalidHeaderInputSize;
        SetHeader(VsockHeader.Read(raw));
        return VsockPacketError.None;
    }

    /// <summary>RX: room for payload. TX: the header's <c>len</c> as parsed (later <see cref="Len"/> changes do not move it).</summary>
    public readonly uint DataCapacity => _dataCapacity;

    /// <summary>
    /// Copies payload bytes from <paramref name="offset"/> on into <paramref name="destination"/>, gathering across
    /// descriptors; at most <see cref="DataCapacity"/> − offset bytes. Returns the number copied.
    /// </summary>
    public readonly int CopyDataTo(Span<byte> destination, uint offset = 0)
    {
        if (offset >= _dataCapacity)
            return 0;
        var count = (int)Math.Min((uint)destination.Length, _dataCapacity - offset);
        if (count == 0)
            return 0;
        if (_memory is null)
        {
            _dataBytes.Slice((int)offset, count).CopyTo(destination);
            return count;
        }
        var index = _dataIndex;
        var position = _dataOffset;
        Advance(_buffers, ref index, ref position, offset);
        Gather(_memory, _buffers, ref index, ref position, destination[..count]);
        return count;
    }

    /// <summary>
    /// The payload's host segments in guest memory (skipping empty descriptors), for a gathered write straight
    /// from guest memory. Returns how many were written to <paramref name="into"/>, or -1 if the payload needs
    /// more than <paramref name="max"/> segments or the packet is not over guest memory (the caller copies then).
    /// The pointers are valid only within the current turn of the VM's loop (see <see cref="Backend.TxTurn"/>).
    /// </summary>
    internal readonly int GetDataSegments(Interop.IoVec* into, int max)
    {
        if (_memory is null)
            return -1;
        var index = _dataIndex;
        var position = _dataOffset;
        var left = _dataCapacity;
        var count = 0;
        while (left > 0)
        {
            if (count == max)
                return -1;
            var segment = NextSegment(_memory, _buffers, ref index, ref position, (int)Math.Min(left, int.MaxValue));
            if (segment.IsEmpty)
                break;
            fixed (byte* p = segment)
                into[count++] = new Interop.IoVec { Base = p, Length = (nuint)segment.Length };
            left -= (uint)segment.Length;
        }
        return count;
    }

    /// <summary>
    /// RX: scatters <paramref name="source"/> into the payload area from <paramref name="offset"/> on; at most
    /// <see cref="DataCapacity"/> − offset bytes. Returns the number written. Does not set <see cref="Len"/>.
    /// </summary>
    public int WriteData(ReadOnlySpan<byte> source, uint offset = 0)
    {
        if (!_dataWritable)
            throw new InvalidOperationException("a TX packet's payload is device-readable and must not be written");
        if (offset >= _dataCapacity)
            return 0;
        var count = (int)Math.Min((uint)source.Length, _dataCapacity - offset);
        if (count == 0)
            return 0;
        if (_memory is null)
        {
            source[..count].CopyTo(_dataBytes[(int)offset..]);
            return count;
        }
        var index = _dataIndex;
        var position = _dataOffset;
        Advance(_buffers, ref index, ref position, offset);
        Scatter(_memory, _buffers, ref index, ref position, source[..count]);
        return count;
    }

    private void WriteField64(int offset, ulong value)
    {
        Span<byte> raw = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(raw, value);
        WriteHeaderBytes(offset, raw);
    }

    private void WriteField32(int offset, uint value)
    {
        Span<byte> raw = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(raw, value);
        WriteHeaderBytes(offset, raw);
    }

    private void WriteField16(int offset, ushort value)
    {
        Span<byte> raw = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(raw, value);
        WriteHeaderBytes(offset, raw);
    }

    private readonly void WriteHeaderBytes(int offset, ReadOnlySpan<byte> bytes)
    {
        if (!_headerWritable)
            return;
        if (_memory is null)
        {
            bytes.CopyTo(_headerBytes[offset..]);
            return;
        }
        var index = 0;
        uint position = 0;
        Advance(_buffers, ref index, ref position, (uint)offset);
        Scatter(_memory, _buffers, ref index, ref position, bytes);
    }

    /// <summary>True if the first <paramref name="length"/> bytes of the chain lie inside guest memory.</summary>
    private static bool IsMapped(GuestMemory memory, ReadOnlySpan<GuestBuffer> buffers, ulong length)
    {
        foreach (var b in buffers)
        {
            if (length == 0)
                break;
            var n = Math.Min(b.Length, length);
            if (n != 0 && !memory.TryGetHostPointer(b.Address, n, out _))
                return false;
            length -= n;
        }
        return length == 0;
    }

    /// <summary>Moves a (descriptor index, offset in it) stream position <paramref name="skip"/> bytes on.</summary>
    private static void Advance(ReadOnlySpan<GuestBuffer> buffers, ref int index, ref uint offset, ulong skip)
    {
        while (skip > 0 && index < buffers.Length)
        {
            var left = buffers[index].Length - offset;
            if (skip < left)
            {
                offset += (uint)skip;
                return;
            }
            skip -= left;
            index++;
            offset = 0;
        }
    }

    /// <summary>
    /// The guest bytes at the stream position, at most <paramref name="max"/> of them and within one descriptor,
    /// and moves the position past them. Empty at the end of the chain. The callers stay inside the range
    /// checked at parse time, so the lookup cannot fail for a well-formed packet (and throws
    /// <see cref="GuestMemoryException"/>, not worse, if it somehow did).
    /// </summary>
    private static Span<byte> NextSegment(GuestMemory memory, ReadOnlySpan<GuestBuffer> buffers, ref int index, ref uint offset, int max)
    {
        while (index < buffers.Length)
        {
            var b = buffers[index];
            var left = b.Length - offset;
            if (left == 0)
            {
                index++;
                offset = 0;
                continue;
            }
            var n = (int)Math.Min(left, (uint)max);
            var segment = new Span<byte>(memory.GetHostPointer(b.Address + offset, (ulong)n), n);
            offset += (uint)n;
            return segment;
        }
        return default;
    }

    private static void Gather(GuestMemory memory, ReadOnlySpan<GuestBuffer> buffers, ref int index, ref uint offset, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            var segment = NextSegment(memory, buffers, ref index, ref offset, destination.Length);
            if (segment.IsEmpty)
                return;
            segment.CopyTo(destination);
            destination = destination[segment.Length..];
        }
    }

    private static void Scatter(GuestMemory memory, ReadOnlySpan<GuestBuffer> buffers, ref int index, ref uint offset, ReadOnlySpan<byte> source)
    {
        while (!source.IsEmpty)
        {
            var segment = NextSegment(memory, buffers, ref index, ref offset, source.Length);
            if (segment.IsEmpty)
                return;
            source[..segment.Length].CopyTo(segment);
            source = source[segment.Length..];
        }
    }
}
