using Vsock.Device.Packets;
using Vsock.Device.Tests.TestSupport;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.Packets;

public sealed class VsockPacketTxTests : IDisposable
{
    private const ulong RamSize = 0x4_0000;
    private const ulong Second = 0x10_0000;
    private readonly NativeGuestMemory _ram = new((0, RamSize), (Second, 0x1000));

    public void Dispose()
    {
        Assert.True(_ram.GuardsIntact);
        _ram.Dispose();
    }

    private VsockPacketError Parse(GuestBuffer[] buffers, out VsockPacket packet, uint maxDataSize = VsockConstants.MaxPacketPayload) =>
        VsockPacket.TryFromTxChain(_ram.Memory, new DescriptorChain(0, buffers), maxDataSize, out packet);

    /// <summary>Writes header (with <paramref name="len"/>) + a payload pattern across the chain; returns the payload.</summary>
    private byte[] Fill(GuestBuffer[] buffers, uint len, int extra = 0)
    {
        var payload = Enumerable.Range(0, (int)len + extra).Select(i => (byte)(i * 7 + 1)).ToArray();
        ChainBytes.Write(_ram.Memory, buffers, [.. ChainBytes.Encode(ChainBytes.SampleHeader(len)), .. payload]);
        return payload[..(int)len];
    }

    public static TheoryData<uint[], uint> Layouts => new()
    {
        { [44 + 100], 100 },                  // header and data in one descriptor (Linux >= 6.2)
        { [44, 100], 100 },                   // header, then one data descriptor
        { [20, 24, 100], 100 },               // header split across two descriptors
        { [44, 30, 30, 40], 100 },            // payload over three descriptors
        { [10, 34 + 5, 0, 60, 35], 100 },     // everything mixed, with an empty descriptor
        { [44], 0 },                          // header alone, len 0
        { [44, 100], 0 },                     // len 0 ignores the rest
        { [44 + 100 + 50], 100 },             // bytes beyond len are ignored
        { [44, 70, 70], 100 },
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Parses_every_layout(uint[] lengths, uint len)
    {
        var buffers = ChainBytes.Layout(0x1000, writable: false, lengths);
        var payload = Fill(buffers, len, extra: (int)(lengths.Sum(l => l) - 44 - len));

        Assert.Equal(VsockPacketError.None, Parse(buffers, out var packet));
        Assert.Equal(ChainBytes.SampleHeader(len), packet.Header);
        Assert.Equal(len, packet.Len);
        Assert.Equal(len, packet.DataCapacity);
        var copy = new byte[len + 10];
        Assert.Equal((int)len, packet.CopyDataTo(copy));
        Assert.Equal(payload, copy[..(int)len]);
    }

    [Fact]
    public void Len_up_to_the_limits_is_accepted()
    {
        var buffers = ChainBytes.Layout(0x1000, false, 44, VsockConstants.MaxPacketPayload);
        Fill(buffers, VsockConstants.MaxPacketPayload);
        Assert.Equal(VsockPacketError.None, Parse(buffers, out var packet, uint.MaxValue));
        Assert.Equal(VsockConstants.MaxPacketPayload, packet.DataCapacity);

        Fill(buffers, 4096);
        Assert.Equal(VsockPacketError.None, Parse(buffers, out _, 4096));
    }

    [Fact]
    public void Empty_chain_is_too_short()
    {
        Assert.Equal(VsockPacketError.DescriptorChainTooShort, Parse([], out var packet));
        Assert.Equal(0u, packet.DataCapacity);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void Any_write_only_descriptor_is_refused(int writableIndex)
    {
        var buffers = ChainBytes.Layout(0x1000, false, 44, 50, 50);
        Fill(buffers, 100);
        buffers[writableIndex] = buffers[writableIndex] with { DeviceWritable = true };
        Assert.Equal(VsockPacketError.UnexpectedWriteOnlyDescriptor, Parse(buffers, out _));
    }

    [Theory]
    [InlineData(new uint[] { 43 })]
    [InlineData(new uint[] { 20, 23 })]
    [InlineData(new uint[] { 0 })]
    public void Fewer_than_44_bytes_are_too_small(uint[] lengths)
    {
        Assert.Equal(VsockPacketError.DescriptorLengthTooSmall, Parse(ChainBytes.Layout(0x1000, false, lengths), out _));
    }

    [Fact]
    public void Len_above_the_tx_buffer_size_is_invalid()
    {
        var buffers = ChainBytes.Layout(0x1000, false, 44, 200);
        Fill(buffers, 101);
        Assert.Equal(VsockPacketError.InvalidHeaderLen, Parse(buffers, out _, 100));
    }

    [Fact]
    public void Len_above_64_KiB_is_invalid_whatever_the_tx_buffer_size()
    {
        var buffers = ChainBytes.Layout(0x1000, false, 44, VsockConstants.MaxPacketPayload + 1);
        Fill(buffers, VsockConstants.MaxPacketPayload + 1);
        Assert.Equal(VsockPacketError.InvalidHeaderLen, Parse(buffers, out _, uint.MaxValue));
    }

    [Theory]
    [InlineData(new uint[] { 44 })]
    [InlineData(new uint[] { 44, 99 })]
    [InlineData(new uint[] { 44 + 60, 39 })]
    public void Payload_shorter_than_len_is_too_small(uint[] lengths)
    {
        var buffers = ChainBytes.Layout(0x1000, false, lengths);
        Fill(buffers, 0);
        ChainBytes.Write(_ram.Memory, buffers, ChainBytes.Encode(ChainBytes.SampleHeader(100)));
        Assert.Equal(VsockPacketError.DescriptorLengthTooSmall, Parse(buffers, out _));
    }

    [Fact]
    public void Chain_longer_than_4_GiB_is_too_long()
    {
        GuestBuffer[] buffers = [new(0x1000, 0x9000_0000, false), new(0x1000, 0x9000_0000, false)];
        Assert.Equal(VsockPacketError.DescriptorLengthTooLong, Parse(buffers, out _));
    }

    [Fact]
    public void Header_outside_guest_memory_is_an_invalid_access()
    {
        Assert.Equal(VsockPacketError.InvalidMemoryAccess, Parse([new(0x8_0000, 44, false)], out _));
        // Crosses the end of the first region.
        Assert.Equal(VsockPacketError.InvalidMemoryAccess, Parse([new(RamSize - 20, 44, false)], out _));
        // Second header piece outside.
        Assert.Equal(VsockPacketError.InvalidMemoryAccess, Parse([new(0x1000, 20, false), new(0xFFFF_FFFF_FFFF_FFF0, 24, false)], out _));
    }

    [Fact]
    public void Payload_outside_guest_memory_is_an_invalid_access()
    {
        var header = ChainBytes.Layout(0x1000, false, 44);
        Fill(header, 0);
        ChainBytes.Write(_ram.Memory, header, ChainBytes.Encode(ChainBytes.SampleHeader(100)));
        Assert.Equal(VsockPacketError.InvalidMemoryAccess, Parse([header[0], new(0x9_0000, 100, false)], out _));
        Assert.Equal(VsockPacketError.InvalidMemoryAccess, Parse([header[0], new(0x2000, 50, false), new(Second + 0x1000 - 10, 50, false)], out _));
    }

    [Fact]
    public void Bytes_beyond_len_may_lie_outside_memory()
    {
        var header = ChainBytes.Layout(0x1000, false, 44 + 10);
        Fill(header, 10);
        Assert.Equal(VsockPacketError.None, Parse([header[0], new(0x9_0000, 100, false)], out var packet));
        Assert.Equal(10u, packet.DataCapacity);
    }

    [Fact]
    public void Header_is_copied_once_so_later_guest_writes_change_nothing()
    {
        var buffers = ChainBytes.Layout(0x1000, false, 30, 14 + 100);
        var payload = Fill(buffers, 100);
        Assert.Equal(VsockPacketError.None, Parse(buffers, out var packet));

        // A hostile guest now claims a huge len and another port.
        var evil = ChainBytes.SampleHeader(60000);
        evil.DstPort = 1;
        ChainBytes.Write(_ram.Memory, buffers, ChainBytes.Encode(evil));

        Assert.Equal(100u, packet.Len);
        Assert.Equal(5000u, packet.DstPort);
        Assert.Equal(ChainBytes.SampleHeader(100), packet.Header);
        var copy = new byte[1000];
        Assert.Equal(100, packet.CopyDataTo(copy));
        Assert.Equal(payload, copy[..100]);
    }

    [Fact]
    public void Setters_on_a_tx_packet_change_only_the_copy()
    {
        var buffers = ChainBytes.Layout(0x1000, false, 44, 16);
        Fill(buffers, 16);
        var before = ChainBytes.Read(_ram.Memory, buffers);
        Assert.Equal(VsockPacketError.None, Parse(buffers, out var packet));

        packet.DstCid = 99;
        packet.SetFlag(VsockShutdownFlags.Both);
        packet.Len = 5;
        packet.SetHeader(ChainBytes.SampleHeader(3) with { SrcPort = 1 });
        packet.SrcPort = 2;

        Assert.Equal(2u, packet.SrcPort);
        Assert.Equal(3u, packet.Len);
        Assert.Equal(16u, packet.DataCapacity); // the parsed len still bounds the payload
        Assert.Equal(before, ChainBytes.Read(_ram.Memory, buffers));
    }

    [Fact]
    public void Writing_a_tx_payload_is_a_caller_bug()
    {
        var buffers = ChainBytes.Layout(0x1000, false, 44, 16);
        Fill(buffers, 16);
        Assert.Equal(VsockPacketError.None, Parse(buffers, out var packet));
        var threw = false;
        try
        {
            packet.WriteData([1, 2, 3]);
        }
        catch (InvalidOperationException)
        {
            threw = true;
        }
        Assert.True(threw);
    }
}
