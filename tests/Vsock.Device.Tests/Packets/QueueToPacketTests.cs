using Vsock.Device.Packets;
using Vsock.Device.Tests.TestSupport;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.Packets;

/// <summary>The device's whole path on one ring: pop a chain, parse it as a packet, complete it.</summary>
public sealed class QueueToPacketTests : IDisposable
{
    private readonly NativeGuestMemory _ram = new(0x4_0000);
    private readonly MockDriver _driver;

    public QueueToPacketTests() => _driver = new MockDriver(_ram.Memory, 64);

    public void Dispose()
    {
        Assert.True(_ram.GuardsIntact);
        _ram.Dispose();
    }

    [Fact]
    public void Tx_packet_with_a_split_header_and_an_indirect_payload()
    {
        var queue = _driver.CreateQueue(eventIdx: true, indirect: true);
        GuestBuffer[] direct = [new(_driver.Alloc(16), 16, false), new(_driver.Alloc(28), 28, false)];
        GuestBuffer[] entries = [new(_driver.Alloc(100), 100, false), new(_driver.Alloc(200), 200, false)];
        var payload = Enumerable.Range(0, 300).Select(i => (byte)i).ToArray();
        ChainBytes.Write(_ram.Memory, [.. direct, .. entries], [.. ChainBytes.Encode(ChainBytes.SampleHeader(300)), .. payload]);
        var head = _driver.AddIndirectChain(_driver.Alloc(32, 16), entries, direct);

        Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out _));
        Assert.Equal(VsockPacketError.None, VsockPacket.TryFromTxChain(_ram.Memory, chain, 64 * 1024, out var packet));
        Assert.Equal(ChainBytes.SampleHeader(300), packet.Header);
        var copy = new byte[300];
        Assert.Equal(300, packet.CopyDataTo(copy));
        Assert.Equal(payload, copy);

        queue.AddUsed(chain.HeadIndex, 0);
        queue.PublishUsed();
        Assert.Equal((head, 0u), _driver.UsedElement(0));
        Assert.Equal(1, _driver.UsedIdx);
    }

    [Fact]
    public void Rx_packet_is_written_and_completed_with_header_plus_payload_length()
    {
        var queue = _driver.CreateQueue();
        GuestBuffer[] buffers = [new(_driver.Alloc(44), 44, true), new(_driver.Alloc(4096), 4096, true)];
        var head = _driver.AddChain(buffers);

        Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out _));
        Assert.Equal(VsockPacketError.None, VsockPacket.TryFromRxChain(_ram.Memory, chain, out var packet));
        var payload = "hello from the host"u8.ToArray();
        packet.SetHeader(ChainBytes.SampleHeader((uint)payload.Length) with { SrcCid = 2, DstCid = 3 });
        Assert.Equal(payload.Length, packet.WriteData(payload));
        queue.AddUsed(chain.HeadIndex, (uint)(VsockConstants.HeaderSize + packet.Len));
        queue.PublishUsed();

        Assert.Equal((head, 44u + (uint)payload.Length), _driver.UsedElement(0));
        var header = VsockHeader.Read(_ram.Bytes(buffers[0].Address, 44));
        Assert.Equal((2UL, 3UL, (uint)payload.Length), (header.SrcCid, header.DstCid, header.Len));
        Assert.Equal(payload, _ram.Bytes(buffers[1].Address, payload.Length).ToArray());
    }
}
