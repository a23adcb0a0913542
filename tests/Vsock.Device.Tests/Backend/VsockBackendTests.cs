using System.Buffers;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Backend;
using Vsock.Device.Packets;
using Vsock.Device.Tests.TestSupport;
using Vsock.Device.VhostUser;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.Backend;

/// <summary>
/// The device behind a session, on fake guest memory with a mock driver per ring: how packets go into RX
/// buffers (split when larger than one buffer), how bad buffers are handed back, and how TX chains are
/// handed out and always completed.
/// </summary>
public sealed class VsockBackendTests : IDisposable
{
    private const ushort QueueSize = 16;
    private readonly NativeGuestMemory _ram = new(1 << 20);
    private readonly MockDriver _rx;
    private readonly MockDriver _tx;
    private readonly RecordingEvents _events = new();
    private readonly VsockBackend _backend;

    public VsockBackendTests()
    {
        _rx = new MockDriver(_ram.Memory, QueueSize, 0);
        _tx = new MockDriver(_ram.Memory, QueueSize, 256 * 1024);
        _backend = new VsockBackend(3, 256, _events);
        _backend.MemoryChanged(_ram.Memory);
        _backend.RingStarted(0, Config(0, _rx));
        _backend.RingStarted(1, Config(1, _tx));
    }

    public void Dispose()
    {
        _backend.Dispose();
        Assert.True(_ram.GuardsIntact);
        _ram.Dispose();
    }

    private static VringConfig Config(int index, MockDriver d) =>
        new(index, QueueSize, d.DescTable, d.AvailRing, d.UsedRing, 0, EventIdx: false, IndirectDescriptors: false, NotifyOnEmpty: false, KickFd: null);

    private ulong PostRx(uint length, bool writable = true)
    {
        var address = _rx.Alloc(length);
        _rx.AddChain(new GuestBuffer(address, length, writable));
        return address;
    }

    private static VsockHeader Rw(uint len) => new()
    {
        SrcCid = 2, DstCid = 3, SrcPort = 1024, DstPort = 5000, Type = VsockType.Stream, Op = VsockOp.Rw, Len = len, BufAlloc = 65536,
    };

    [Fact]
    public void A_payload_larger_than_one_rx_buffer_is_split_over_several_not_truncated()
    {
        var payload = ArrayPool<byte>.Shared.Rent(10000);
        new Random(1).NextBytes(payload.AsSpan(0, 10000));
        var expected = payload.AsSpan(0, 10000).ToArray();
        _backend.Enqueue(new OutboundPacket { Header = Rw(10000), Data = payload, Length = 10000, Owner = "conn" });
        var buffers = new[] { PostRx(4096), PostRx(4096), PostRx(4096) };

        Assert.Equal(VsockBackend.RxResult.Idle, _backend.DrainRx(64));

        Assert.Equal(3, _rx.UsedIdx);
        var received = new List<byte>();
        for (ushort i = 0; i < 3; i++)
        {
            var (_, length) = _rx.UsedElement(i);
            var header = VsockHeader.Read(_ram.Bytes(buffers[i], 44));
            Assert.Equal(VsockOp.Rw, header.Op);
            Assert.Equal(length - 44, header.Len);
            received.AddRange(_ram.Bytes(buffers[i] + 44, (int)header.Len).ToArray());
        }
        Assert.Equal(new uint[] { 4052, 4052, 1896 }, Enumerable.Range(0, 3).Select(i => _rx.UsedElement((ushort)i).Length - 44));
        Assert.Equal(expected, received.ToArray());
        Assert.Equal(["conn"], _events.Delivered); // one delivery, after the last part
    }

    [Fact]
    public void Unusable_rx_buffers_are_handed_back_empty_and_the_packet_takes_the_next_good_one()
    {
        _backend.Enqueue(OutboundPacket.Control(Rw(0) with { Op = VsockOp.Response }));
        PostRx(4096, writable: false); // device-readable: not an RX buffer
        PostRx(20);                    // smaller than a header
        var good = PostRx(4096);

        _backend.DrainRx(64);

        Assert.Equal(3, _rx.UsedIdx);
        Assert.Equal(0u, _rx.UsedElement(0).Length);
        Assert.Equal(0u, _rx.UsedElement(1).Length);
        Assert.Equal(44u, _rx.UsedElement(2).Length);
        Assert.Equal(VsockOp.Response, VsockHeader.Read(_ram.Bytes(good, 44)).Op);
    }

    [Fact]
    public void Without_rx_buffers_packets_wait_and_go_out_once_buffers_arrive()
    {
        _backend.Enqueue(OutboundPacket.Control(Rw(0) with { Op = VsockOp.CreditUpdate }));
        Assert.Equal(VsockBackend.RxResult.WaitingForBuffers, _backend.DrainRx(64));
        Assert.Equal(1, _backend.OutboundCount);
        PostRx(4096);
        Assert.Equal(VsockBackend.RxResult.Idle, _backend.DrainRx(64));
        Assert.Equal(0, _backend.OutboundCount);
        Assert.Equal(1, _rx.UsedIdx);
    }

    [Fact]
    public void The_rx_budget_bounds_one_drain()
    {
        for (var i = 0; i < 5; i++)
        {
            _backend.Enqueue(OutboundPacket.Control(Rw(0) with { Op = VsockOp.CreditUpdate }));
            PostRx(256);
        }
        Assert.Equal(VsockBackend.RxResult.BudgetExhausted, _backend.DrainRx(3));
        Assert.Equal(3, _rx.UsedIdx);
        Assert.Equal(VsockBackend.RxResult.Idle, _backend.DrainRx(3));
        Assert.Equal(5, _rx.UsedIdx);
    }

    [Fact]
    public void Every_tx_chain_is_completed_and_only_well_formed_packets_reach_the_handler()
    {
        var header = _tx.Alloc(44);
        Rw(5).Write(_ram.Bytes(header, 44));
        var data = _tx.Alloc(5);
        "hello"u8.CopyTo(_ram.Bytes(data, 5));
        _tx.AddChain(new GuestBuffer(header, 44, false), new GuestBuffer(data, 5, false)); // good
        _tx.AddChain(new GuestBuffer(header, 44, true));                                    // write-only header
        _tx.AddChain(new GuestBuffer(header, 30, false));                                   // too short
        _tx.AddChain(new GuestBuffer(0xFFFF_0000, 44, false));                              // outside memory
        var handler = new RecordingHandler();

        Assert.False(_backend.DrainTx(64, handler));

        Assert.Equal(4, _tx.UsedIdx);
        Assert.All(Enumerable.Range(0, 4), i => Assert.Equal(0u, _tx.UsedElement((ushort)i).Length));
        Assert.Equal(["hello"], handler.Payloads);
    }

    [Fact]
    public void A_reset_drops_what_waits_for_the_guest_and_stops_the_rings()
    {
        _backend.Enqueue(new OutboundPacket { Header = Rw(3), Data = ArrayPool<byte>.Shared.Rent(3), Length = 3, Owner = "conn" });
        _backend.Reset();
        Assert.False(_backend.IsRunning);
        Assert.Equal(1, _events.Dropped);
        Assert.Equal(1, _events.Resets);
        Assert.Equal(VsockBackend.RxResult.NotRunning, _backend.DrainRx(64));
    }

    [Fact]
    public void A_disabled_ring_pauses_and_resumes_where_it_stopped()
    {
        _backend.RingEnabledChanged(0, false);
        Assert.False(_backend.IsRunning);
        _backend.Enqueue(OutboundPacket.Control(Rw(0) with { Op = VsockOp.CreditUpdate }));
        PostRx(4096);
        Assert.Equal(VsockBackend.RxResult.NotRunning, _backend.DrainRx(64));
        Assert.Equal(0, _rx.UsedIdx);
        _backend.RingEnabledChanged(0, true);
        Assert.Equal(VsockBackend.RxResult.Idle, _backend.DrainRx(64));
        Assert.Equal(1, _rx.UsedIdx);
        Assert.Equal((ushort)1, _backend.RingStopped(0));
    }

    [Fact]
    public void Config_space_is_the_guest_cid_as_le64()
    {
        Assert.Equal(new byte[] { 3, 0, 0, 0, 0, 0, 0, 0 }, _backend.ConfigSpace.ToArray());
        Assert.Equal(3, _backend.QueueCount);
    }

    private sealed class RecordingHandler : ITxPacketHandler
    {
        public List<string> Payloads { get; } = [];

        public void OnTxPacket(ref VsockPacket packet)
        {
            var buffer = new byte[packet.Len];
            packet.CopyDataTo(buffer);
            Payloads.Add(System.Text.Encoding.ASCII.GetString(buffer));
        }
    }

    private sealed class RecordingEvents : IVsockDeviceEvents
    {
        public List<object?> Delivered { get; } = [];
        public int Dropped { get; private set; }
        public int Resets { get; private set; }

        public void RingReady(int index, SafeFileHandle? kickFd) { }
        public void RingStopped(int index) { }
        public void DeviceReset() => Resets++;
        public void PacketDelivered(in OutboundPacket packet) => Delivered.Add(packet.Owner);
        public void PacketDropped(in OutboundPacket packet) => Dropped++;
    }
}
