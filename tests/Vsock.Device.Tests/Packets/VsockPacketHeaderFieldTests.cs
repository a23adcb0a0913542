using Vsock.Device.Packets;
using Vsock.Device.Tests.TestSupport;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.Packets;

public sealed class VsockPacketHeaderFieldTests : IDisposable
{
    private readonly NativeGuestMemory _ram = new(0x1_0000);
    // A header split so that 8- and 4-byte fields straddle descriptor boundaries.
    private readonly GuestBuffer[] _buffers = ChainBytes.Layout(0x1000, true, 10, 13, 21, 16);

    public VsockPacketHeaderFieldTests() => _ram.Bytes(0, 0x1_0000).Fill(0xEE);

    public void Dispose()
    {
        Assert.True(_ram.GuardsIntact);
        _ram.Dispose();
    }

    private VsockPacket Rx()
    {
        Assert.Equal(VsockPacketError.None, VsockPacket.TryFromRxChain(_ram.Memory, new DescriptorChain(0, _buffers), out var packet));
        return packet;
    }

    public static TheoryData<string, int, int, ulong> Fields => new()
    {
        { "SrcCid", 0, 8, 0x8877665544332211 },
        { "DstCid", 8, 8, 0x0102030405060708 },
        { "SrcPort", 16, 4, 0xA1B2C3D4 },
        { "DstPort", 20, 4, 0x11223344 },
        { "Len", 24, 4, 0x00010000 },
        { "Type", 28, 2, 0xBEEF },
        { "Op", 30, 2, 0x0507 },
        { "Flags", 32, 4, 0xF00DCAFE },
        { "BufAlloc", 36, 4, 0x12345678 },
        { "FwdCnt", 40, 4, 0x9ABCDEF0 },
    };

    private static void Set(ref VsockPacket p, string field, ulong value)
    {
        switch (field)
        {
            case "SrcCid": p.SrcCid = value; break;
            case "DstCid": p.DstCid = value; break;
            case "SrcPort": p.SrcPort = (uint)value; break;
            case "DstPort": p.DstPort = (uint)value; break;
            case "Len": p.Len = (uint)value; break;
            case "Type": p.Type = (ushort)value; break;
            case "Op": p.Op = (ushort)value; break;
            case "Flags": p.Flags = (uint)value; break;
            case "BufAlloc": p.BufAlloc = (uint)value; break;
            case "FwdCnt": p.FwdCnt = (uint)value; break;
            default: throw new ArgumentException(field);
        }
    }

    private static ulong Get(in VsockPacket p, string field) => field switch
    {
        "SrcCid" => p.SrcCid,
        "DstCid" => p.DstCid,
        "SrcPort" => p.SrcPort,
        "DstPort" => p.DstPort,
        "Len" => p.Len,
        "Type" => p.Type,
        "Op" => p.Op,
        "Flags" => p.Flags,
        "BufAlloc" => p.BufAlloc,
        "FwdCnt" => p.FwdCnt,
        _ => throw new ArgumentException(field),
    };

    [Theory]
    [MemberData(nameof(Fields))]
    public void Setter_round_trips_and_lands_at_the_field_offset(string field, int offset, int size, ulong value)
    {
        var packet = Rx();
        var before = ChainBytes.Read(_ram.Memory, _buffers);

        Set(ref packet, field, value);

        Assert.Equal(value, Get(packet, field));
        var after = ChainBytes.Read(_ram.Memory, _buffers);
        var expected = before.ToArray();
        for (var i = 0; i < size; i++)
            expected[offset + i] = (byte)(value >> (8 * i));
        Assert.Equal(expected, after);
        // The guest bytes decode to the value, and the cached copy changed in that field only.
        Assert.Equal(value, Get(VsockPacket.FromBuffers(after.AsSpan(0, 44), []), field));
        var expectedHeader = VsockPacket.FromBuffers(new byte[44], []);
        Set(ref expectedHeader, field, value);
        Assert.Equal(expectedHeader.Header, packet.Header);
    }

    [Fact]
    public void SetFlag_ors_into_flags()
    {
        var packet = Rx();
        packet.Flags = VsockShutdownFlags.Receive;
        packet.SetFlag(VsockShutdownFlags.Send);
        packet.SetFlag(VsockShutdownFlags.Send);
        Assert.Equal(VsockShutdownFlags.Both, packet.Flags);
        Assert.Equal(VsockShutdownFlags.Both, VsockHeader.Read(ChainBytes.Read(_ram.Memory, _buffers)).Flags);
    }

    [Fact]
    public void SetHeader_writes_all_44_bytes()
    {
        var packet = Rx();
        var header = ChainBytes.SampleHeader(12);
        packet.SetHeader(header);
        Assert.Equal(header, packet.Header);
        var stream = ChainBytes.Read(_ram.Memory, _buffers);
        Assert.Equal(ChainBytes.Encode(header), stream[..44]);
        Assert.All(stream[44..], b => Assert.Equal(0xEE, b));
    }

    [Fact]
    public void SetHeaderFromRaw_needs_exactly_44_bytes()
    {
        var packet = Rx();
        var before = ChainBytes.Read(_ram.Memory, _buffers);
        Assert.Equal(VsockPacketError.InvalidHeaderInputSize, packet.SetHeaderFromRaw(new byte[43]));
        Assert.Equal(VsockPacketError.InvalidHeaderInputSize, packet.SetHeaderFromRaw(new byte[45]));
        Assert.Equal(default, packet.Header);
        Assert.Equal(before, ChainBytes.Read(_ram.Memory, _buffers));

        var raw = ChainBytes.Encode(ChainBytes.SampleHeader(7));
        Assert.Equal(VsockPacketError.None, packet.SetHeaderFromRaw(raw));
        Assert.Equal(ChainBytes.SampleHeader(7), packet.Header);
        Assert.Equal(raw, ChainBytes.Read(_ram.Memory, _buffers)[..44]);
    }

    [Fact]
    public void Buffer_packet_reads_its_header_and_writes_through()
    {
        var header = ChainBytes.Encode(ChainBytes.SampleHeader(4));
        var data = new byte[10];
        var packet = VsockPacket.FromBuffers(header, data);
        Assert.Equal(ChainBytes.SampleHeader(4), packet.Header);
        Assert.Equal(10u, packet.DataCapacity);

        packet.FwdCnt = 0x01020304;
        Assert.Equal([4, 3, 2, 1], header[40..44]);
        packet.SetFlag(8);
        Assert.Equal(8u, VsockHeader.Read(header).Flags);

        Assert.Equal(3, packet.WriteData([7, 8, 9], 8 - 1));
        Assert.Equal(0, packet.WriteData([1], 10));
        Assert.Equal([0, 0, 0, 0, 0, 0, 0, 7, 8, 9], data);
        var copy = new byte[4];
        Assert.Equal(3, packet.CopyDataTo(copy, 7));
        Assert.Equal([7, 8, 9, 0], copy);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(43)]
    [InlineData(45)]
    public void Buffer_packet_header_must_be_44_bytes(int length)
    {
        Assert.Throws<ArgumentException>(() => VsockPacket.FromBuffers(new byte[length], new byte[10]));
    }
}
