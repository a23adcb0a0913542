using Vsock.Device.Packets;
using Vsock.Device.Tests.TestSupport;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.Packets;

/// <summary>CopyDataTo / WriteData at every offset, across descriptor boundaries and empty descriptors.</summary>
public sealed class VsockPacketDataTests : IDisposable
{
    private readonly NativeGuestMemory _ram = new(0x1_0000);

    public void Dispose()
    {
        Assert.True(_ram.GuardsIntact);
        _ram.Dispose();
    }

    public static TheoryData<uint[]> Layouts => new()
    {
        { [44, 7, 1, 0, 13, 50] },     // payload starts at a descriptor boundary
        { [30, 21, 7, 0, 13, 44] },    // payload starts 14 bytes into the second descriptor
        { [44 + 71] },                 // one descriptor
    };

    private static readonly int[] Lengths = [0, 1, 5, 13, 71, 100];

    [Theory]
    [MemberData(nameof(Layouts))]
    public void CopyDataTo_gathers_from_any_offset(uint[] lengths)
    {
        var buffers = ChainBytes.Layout(0x1000, false, lengths);
        var payload = Enumerable.Range(0, 71).Select(i => (byte)(200 - i)).ToArray();
        ChainBytes.Write(_ram.Memory, buffers, [.. ChainBytes.Encode(ChainBytes.SampleHeader(71)), .. payload]);
        Assert.Equal(VsockPacketError.None, VsockPacket.TryFromTxChain(_ram.Memory, new DescriptorChain(0, buffers), 1000, out var packet));

        for (uint offset = 0; offset <= 75; offset++)
        {
            foreach (var length in Lengths)
            {
                var destination = new byte[length];
                var copied = packet.CopyDataTo(destination, offset);
                var expected = payload.Skip((int)offset).Take(length).ToArray();
                Assert.Equal(expected.Length, copied);
                Assert.Equal(expected, destination[..copied]);
                Assert.All(destination[copied..], b => Assert.Equal(0, b));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void WriteData_scatters_from_any_offset(uint[] lengths)
    {
        var buffers = ChainBytes.Layout(0x1000, true, lengths);
        for (uint offset = 0; offset <= 75; offset++)
        {
            foreach (var length in Lengths)
            {
                ChainBytes.Write(_ram.Memory, buffers, new byte[44 + 71]);
                Assert.Equal(VsockPacketError.None, VsockPacket.TryFromRxChain(_ram.Memory, new DescriptorChain(0, buffers), out var packet));
                Assert.Equal(71u, packet.DataCapacity);
                var source = Enumerable.Range(1, length).Select(i => (byte)i).ToArray();

                var written = packet.WriteData(source, offset);

                var expected = new byte[44 + 71];
                var n = Math.Max(0, Math.Min(length, 71 - (int)offset));
                Assert.Equal(n, written);
                source.AsSpan(0, n).CopyTo(expected.AsSpan(44 + (int)Math.Min(offset, 71)));
                Assert.Equal(expected, ChainBytes.Read(_ram.Memory, buffers));

                // And reads back through the packet.
                var back = new byte[n];
                Assert.Equal(n, packet.CopyDataTo(back, offset));
                Assert.Equal(source[..n], back);
            }
        }
    }
}
