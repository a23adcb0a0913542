using Vsock.Device.Packets;
using Vsock.Device.Tests.TestSupport;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.Packets;

public sealed class VsockPacketRxTests : IDisposable
{
    private const ulong RamSize = 0x4_0000;
    private const ulong Second = 0x10_0000;
    private readonly NativeGuestMemory _ram = new((0, RamSize), (Second, 0x1000));

    public VsockPacketRxTests() => _ram.Bytes(0, (int)RamSize).Fill(0xEE);

    public void Dispose()
    {
        Assert.True(_ram.GuardsIntact);
        _ram.Dispose();
    }

    private VsockPacketError Parse(GuestBuffer[] buffers, out VsockPacket packet) =>
        VsockPacket.TryFromRxChain(_ram.Memory, new DescriptorChain(0, buffers), out packet);

    public static TheoryData<uint[]> Layouts => new()
    {
        { [44 + 100] },              // header and data in one descriptor
        { [44, 100] },               // header, then one data descriptor (older Linux)
        { [20, 24, 100] },           // header split across two descriptors
        { [44, 30, 30, 40] },        // payload room over three descriptors
        { [10, 34 + 5, 0, 60, 35] },
        { [44] },                    // header only: room for nothing but control packets
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Parses_every_layout_without_reading_guest_memory(uint[] lengths)
    {
        var buffers = ChainBytes.Layout(0x1000, writable: true, lengths);
        var before = ChainBytes.Read(_ram.Memory, buffers);

        Assert.Equal(VsockPacketError.None, Parse(buffers, out var packet));
        Assert.Equal(default, packet.Header);
        Assert.Equal(lengths.Sum(l => l) - 44, packet.DataCapacity);
        Assert.Equal(before, ChainBytes.Read(_ram.Memory, buffers));
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Fills_every_layout_like_a_device(uint[] lengths)
    {
        var buffers = ChainBytes.Layout(0x1000, writable: true, lengths);
        Assert.Equal(VsockPacketError.None, Parse(buffers, out var packet));
        var payload = Enumerable.Range(0, (int)packet.DataCapacity).Select(i => (byte)(i + 3)).ToArray();

        Assert.Equal(payload.Length, packet.WriteData(payload));
        var header = ChainBytes.SampleHeader((uint)payload.Length);
        packet.SetHeader(header);

        Assert.Equal(header, packet.Header);
        Assert.Equal([.. ChainBytes.Encode(header), .. payload], ChainBytes.Read(_ram.Memory, buffers));
        // The holes between descriptors were not touched.
        for (var i = 0; i < buffers.Length - 1; i++)
            Assert.All(_ram.Bytes(buffers[i].Address + buffers[i].Length, 8).ToArray(), b => Assert.Equal(0xEE, b));
    }

    [Fact]
    public void Payload_room_is_capped_at_64_KiB()
    {
        var buffers = ChainBytes.Layout(0x1000, true, 44 + 70000);
        Assert.Equal(VsockPacketError.None, Parse(buffers, out var packet));
        Assert.Equal(VsockConstants.MaxPacketPayload, packet.DataCapacity);

        Assert.Equal(65536, packet.WriteData(new byte[70000]));
        var stream = ChainBytes.Read(_ram.Memory, buffers);
        Assert.All(stream[44..(44 + 65536)], b => Assert.Equal(0, b));
        Assert.All(stream[(44 + 65536)..], b => Assert.Equal(0xEE, b));
    }

    [Fact]
    public void Room_beyond_the_cap_may_lie_outside_memory()
    {
        var buffers = ChainBytes.Layout(0x1000, true, 44 + VsockConstants.MaxPacketPayload);
        Assert.Equal(VsockPacketError.None, Parse([.. buffers, new(0x9_0000, 100, true)], out var packet));
        Assert.Equal(VsockConstants.MaxPacketPayload, packet.DataCapacity);
    }

    [Fact]
    public void Empty_chain_is_too_short()
    {
        Assert.Equal(VsockPacketError.DescriptorChainTooShort, Parse([], out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void Any_read_only_descriptor_is_refused(int readableIndex)
    {
        var buffers = ChainBytes.Layout(0x1000, true, 44, 50, 50);
        buffers[readableIndex] = buffers[readableIndex] with { DeviceWritable = false };
        Assert.Equal(VsockPacketError.UnexpectedReadOnlyDescriptor, Parse(buffers, out _));
    }

    [Theory]
    [InlineData(new uint[] { 43 })]
    [InlineData(new uint[] { 20, 0, 23 })]
    public void Fewer_than_44_bytes_are_too_small(uint[] lengths)
    {
        Assert.Equal(VsockPacketError.DescriptorLengthTooSmall, Parse(ChainBytes.Layout(0x1000, true, lengths), out _));
    }

    [Fact]
    public void Chain_longer_than_4_GiB_is_too_long()
    {
        Assert.Equal(VsockPacketError.DescriptorLengthTooLong, Parse([new(0x1000, uint.MaxValue, true), new(0x1000, 1, true)], out _));
    }

    [Fact]
    public void Buffers_outside_guest_memory_are_an_invalid_access()
    {
        Assert.Equal(VsockPacketError.InvalidMemoryAccess, Parse([new(0x8_0000, 100, true)], out _));
        Assert.Equal(VsockPacketError.InvalidMemoryAccess, Parse([new(RamSize - 20, 44, true)], out _));
        Assert.Equal(VsockPacketError.InvalidMemoryAccess, Parse([new(0x1000, 44, true), new(Second + 0x1000 - 10, 50, true)], out _));
        Assert.Equal(VsockPacketError.InvalidMemoryAccess, Parse([new(0x1000, 44, true), new(0xFFFF_FFFF_FFFF_FFFF, 50, true)], out _));
    }
}
