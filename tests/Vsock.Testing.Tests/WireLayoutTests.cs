using Vsock.Testing.Packets;
using Vsock.Testing.Virtio;

namespace Vsock.Testing.Tests;

public sealed class WireLayoutTests
{
    [Fact]
    public void Vsock_header_fields_sit_at_the_spec_offsets_little_endian()
    {
        var header = new VsockHeader(0x0102030405060708, 0x1112131415161718, 0x21222324, 0x31323334, 0x41424344,
            0x5152, 0x6162, 0x71727374, 0x81828384, 0x91929394);
        var bytes = header.ToBytes();

        Assert.Equal(44, VsockHeader.Size);
        Assert.Equal(44, bytes.Length);
        Assert.Equal(new byte[] { 8, 7, 6, 5, 4, 3, 2, 1 }, bytes[0..8]);
        Assert.Equal(new byte[] { 0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11 }, bytes[8..16]);
        Assert.Equal(new byte[] { 0x24, 0x23, 0x22, 0x21 }, bytes[16..20]);
        Assert.Equal(new byte[] { 0x34, 0x33, 0x32, 0x31 }, bytes[20..24]);
        Assert.Equal(new byte[] { 0x44, 0x43, 0x42, 0x41 }, bytes[24..28]);
        Assert.Equal(new byte[] { 0x52, 0x51 }, bytes[28..30]);
        Assert.Equal(new byte[] { 0x62, 0x61 }, bytes[30..32]);
        Assert.Equal(new byte[] { 0x74, 0x73, 0x72, 0x71 }, bytes[32..36]);
        Assert.Equal(new byte[] { 0x84, 0x83, 0x82, 0x81 }, bytes[36..40]);
        Assert.Equal(new byte[] { 0x94, 0x93, 0x92, 0x91 }, bytes[40..44]);
        Assert.Equal(header, VsockHeader.ReadFrom(bytes));
    }

    [Fact]
    public void Short_header_buffers_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => VsockHeader.ReadFrom(new byte[43]));
        Assert.Throws<ArgumentException>(() => default(VsockHeader).WriteTo(new byte[43]));
    }

    [Fact]
    public void Descriptor_encoding_matches_virtq_desc()
    {
        var d = new byte[16];
        DriverQueue.Encode(d, 0x1122334455667788, 0x99aabbcc, 0x0102, 0x0304);
        Assert.Equal(new byte[] { 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xcc, 0xbb, 0xaa, 0x99, 0x02, 0x01, 0x04, 0x03 }, d);
    }

    [Theory]
    // need_event(event, new, old): kick iff event lies in [old, new)
    [InlineData(0, 1, 0, true)]
    [InlineData(1, 1, 0, false)]
    [InlineData(5, 10, 0, true)]
    [InlineData(10, 10, 0, false)]
    [InlineData(65535, 2, 65534, true)] // across the wrap
    [InlineData(1, 2, 65534, true)]
    [InlineData(2, 2, 65534, false)]
    [InlineData(65533, 2, 65534, false)] // event already passed before old
    public void Need_event_matches_the_spec_formula(int eventIdx, int newIdx, int oldIdx, bool expected) =>
        Assert.Equal(expected, DriverQueue.NeedEvent((ushort)eventIdx, (ushort)newIdx, (ushort)oldIdx));
}
