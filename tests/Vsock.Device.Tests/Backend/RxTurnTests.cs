using System.Net.Sockets;
using Vsock.Device.Backend;
using Vsock.Device.Interop;
using Vsock.Device.Packets;
using Vsock.Device.Tests.TestSupport;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.Backend;

/// <summary>
/// One RX turn over fake guest memory and a mock driver: control packets, payloads split over buffers of every
/// layout, reads from a real socket straight into the buffers (unused ones go back to the ring), unusable buffers
/// handed back empty, and one guest notification per turn.
/// </summary>
public sealed class RxTurnTests : IDisposable
{
    private const int Room = 4096 - VsockConstants.HeaderSize;
    private readonly DeviceRig _rig = new();
    private readonly UnixSocket _ours;
    private readonly Socket _peer;

    public RxTurnTests()
    {
        var (ours, peer) = UnixSocket.Pair();
        _ours = ours;
        _peer = peer.ToSocket();
        _peer.ReceiveTimeout = 5000;
    }

    public void Dispose()
    {
        _peer.Dispose();
        _ours.Dispose();
        _rig.Dispose();
    }

    private static VsockHeader Template(ushort op = VsockOp.Rw, uint flags = 0) => new()
    {
        SrcCid = 2,
        DstCid = DeviceRig.GuestCid,
        SrcPort = 1024,
        DstPort = 5000,
        Type = VsockType.Stream,
        Op = op,
        Flags = flags,
        BufAlloc = 65536,
        FwdCnt = 77,
        Len = 12345, // never trusted: every packet's len is set by the turn
    };

    private RxReadResult Read(uint maxBytes, out int bytes, out int offered, uint lastFlags = 0)
    {
        Assert.True(_rig.Backend.TryBeginRx(out var turn));
        var result = turn.ReadFrom(_ours.Handle, Template(), maxBytes, out bytes, out offered, out _, lastFlags);
        turn.Complete();
        return result;
    }

    private static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    [Fact]
    public void A_control_packet_takes_one_buffer_and_is_published_at_complete()
    {
        var head = _rig.PostRx();
        _rig.PostRx();
        Assert.True(_rig.Backend.TryBeginRx(out var turn));

        Assert.True(turn.TryWriteControl(Template(VsockOp.Response)));
        Assert.Equal(1, turn.Used);
        Assert.Equal(0, _rig.Rx.UsedIdx); // not visible to the guest before Complete
        turn.Complete();

        var packet = Assert.Single(_rig.TakeRx());
        Assert.Equal(head, packet.Head);
        Assert.Equal((uint)VsockConstants.HeaderSize, packet.UsedLength);
        Assert.Equal(Template(VsockOp.Response) with { Len = 0 }, packet.Header);
        Assert.Equal(1ul, _rig.TakeRxCalls());
    }

    [Fact]
    public void Without_buffers_a_control_packet_is_refused_and_kicks_are_rearmed()
    {
        using var rig = new DeviceRig(eventIdx: true);
        rig.PostRx();
        Assert.True(rig.Backend.TryBeginRx(out var turn));
        Assert.True(turn.TryWriteControl(Template(VsockOp.CreditUpdate)));
        turn.Complete();
        rig.Ram.Memory.WriteUInt16(rig.Rx.UsedRing + SplitRingLayout.AvailEventOffset(rig.Rx.Size), 1234);

        Assert.True(rig.Backend.TryBeginRx(out turn));
        Assert.False(turn.TryWriteControl(Template(VsockOp.CreditUpdate)));
        Assert.True(turn.RanDry);
        turn.Complete();
        Assert.Equal(1, rig.Rx.UsedIdx);
        Assert.Equal(1, rig.Rx.AvailEvent); // the guest's next buffer brings a kick
        Assert.Equal(1ul, rig.TakeRxCalls());
    }

    public enum Layout { Single, HeaderThenPayload, HeaderSplit, Indirect }

    private ushort Post(Layout layout, uint payloadRoom)
    {
        switch (layout)
        {
            case Layout.Single:
                return _rig.PostRx(VsockConstants.HeaderSize + payloadRoom);
            case Layout.HeaderThenPayload:
                return _rig.PostRxTwoDescriptors(payloadRoom);
            case Layout.HeaderSplit:
                // 20 + 30 bytes: the header ends 6 bytes into the second descriptor, the payload starts there.
                var a = _rig.Alloc(20);
                var b = _rig.Alloc(30);
                var c = _rig.Alloc(payloadRoom - 6);
                return _rig.PostRxChain(new GuestBuffer(a, 20, true), new GuestBuffer(b, 30, true), new GuestBuffer(c, payloadRoom - 6, true));
            default:
                return _rig.PostRxIndirect(payloadRoom);
        }
    }

    [Theory]
    [InlineData(Layout.Single)]
    [InlineData(Layout.HeaderThenPayload)]
    [InlineData(Layout.HeaderSplit)]
    [InlineData(Layout.Indirect)]
    public void A_payload_larger_than_a_buffer_is_split_with_one_header_each_and_the_flags_on_the_last(Layout layout)
    {
        using var indirectRig = layout == Layout.Indirect ? new DeviceRig(indirect: true) : null;
        var rig = indirectRig ?? _rig;
        var heads = new List<ushort>();
        for (var i = 0; i < 4; i++)
            heads.Add(layout == Layout.Indirect ? rig.PostRxIndirect(1000) : Post(layout, 1000));
        var payload = Pattern(2500, 1);

        Assert.True(rig.Backend.TryBeginRx(out var turn));
        var offset = 0;
        var lengths = new List<int>();
        while (offset < payload.Length)
        {
            Assert.True(turn.TryWriteData(Template(flags: 0x10), payload.AsSpan(offset), out var written, lastFlags: VsockSeqFlags.Eom));
            lengths.Add(written);
            offset += written;
        }
        turn.Complete();

        Assert.Equal([1000, 1000, 500], lengths);
        var packets = rig.TakeRx();
        Assert.Equal(heads.Take(3), packets.Select(p => p.Head));
        Assert.Equal([1000u, 1000u, 500u], packets.Select(p => p.Header.Len));
        Assert.All(packets, p => Assert.Equal(VsockConstants.HeaderSize + p.Header.Len, p.UsedLength));
        Assert.Equal([0x10u, 0x10u, 0x10u | VsockSeqFlags.Eom], packets.Select(p => p.Header.Flags));
        Assert.All(packets, p => Assert.Equal(Template() with { Len = p.Header.Len, Flags = p.Header.Flags }, p.Header));
        Assert.Equal(payload, packets.SelectMany(p => p.Payload).ToArray());
    }

    [Theory]
    [InlineData(Layout.Single)]
    [InlineData(Layout.HeaderThenPayload)]
    [InlineData(Layout.HeaderSplit)]
    [InlineData(Layout.Indirect)]
    public void A_socket_read_fills_the_buffers_of_every_layout_with_one_recvmsg(Layout layout)
    {
        using var indirectRig = layout == Layout.Indirect ? new DeviceRig(indirect: true) : null;
        var rig = indirectRig ?? _rig;
        for (var i = 0; i < 3; i++)
            _ = layout == Layout.Indirect ? rig.PostRxIndirect(1000) : Post(layout, 1000);
        var data = Pattern(2500, 2);
        _peer.Send(data);

        Assert.True(rig.Backend.TryBeginRx(out var turn));
        Assert.Equal(RxReadResult.Data, turn.ReadFrom(_ours.Handle, Template(), 65536, out var bytes, out var offered, out _));
        turn.Complete();

        Assert.Equal(2500, bytes);
        Assert.Equal(3000, offered);
        var packets = rig.TakeRx();
        Assert.Equal([1000u, 1000u, 500u], packets.Select(p => p.Header.Len));
        Assert.All(packets, p => Assert.Equal(VsockConstants.HeaderSize + p.Header.Len, p.UsedLength));
        Assert.Equal(data, packets.SelectMany(p => p.Payload).ToArray());
    }

    [Fact]
    public void A_short_read_returns_the_unused_buffers_to_the_ring_and_they_are_used_next()
    {
        var heads = Enumerable.Range(0, 4).Select(_ => _rig.PostRx()).ToList();
        var first = Pattern(Room + 100, 3);
        _peer.Send(first);

        Assert.Equal(RxReadResult.Data, Read(65536, out var bytes, out var offered));
        Assert.Equal(first.Length, bytes);
        Assert.Equal(4 * Room, offered); // a read of fewer bytes than offered: the socket is drained
        var packets = _rig.TakeRx();
        Assert.Equal(heads.Take(2), packets.Select(p => p.Head));
        Assert.Equal(2, _rig.Backend.Pending(VsockBackend.RxQueueIndex));

        var second = Pattern(10, 4);
        _peer.Send(second);
        Assert.Equal(RxReadResult.Data, Read(65536, out bytes, out _));
        var next = Assert.Single(_rig.TakeRx());
        Assert.Equal(heads[2], next.Head);
        Assert.Equal(second, next.Payload);
        Assert.Equal(1, _rig.Backend.Pending(VsockBackend.RxQueueIndex));
    }

    [Fact]
    public void Nothing_to_read_uses_no_buffer()
    {
        var head = _rig.PostRx();
        _rig.PostRx();

        Assert.Equal(RxReadResult.WouldBlock, Read(65536, out var bytes, out _));
        Assert.Equal(0, bytes);
        Assert.Equal(0, _rig.Rx.UsedIdx);
        Assert.Equal(2, _rig.Backend.Pending(VsockBackend.RxQueueIndex));
        Assert.Equal(0ul, _rig.TakeRxCalls());

        // The buffers are still first in line.
        Assert.True(_rig.Backend.TryBeginRx(out var turn));
        Assert.True(turn.TryWriteControl(Template(VsockOp.CreditUpdate)));
        turn.Complete();
        Assert.Equal(head, Assert.Single(_rig.TakeRx()).Head);
    }

    [Fact]
    public void End_of_stream_uses_no_buffer()
    {
        _rig.PostRxBuffers(2);
        _peer.Shutdown(SocketShutdown.Send);

        Assert.Equal(RxReadResult.EndOfStream, Read(65536, out var bytes, out _));
        Assert.Equal(0, bytes);
        Assert.Equal(0, _rig.Rx.UsedIdx);
        Assert.Equal(2, _rig.Backend.Pending(VsockBackend.RxQueueIndex));
    }

    [Fact]
    public void Without_buffers_nothing_is_read_and_the_data_stays_in_the_socket()
    {
        _peer.Send(Pattern(100, 5));
        Assert.True(_rig.Backend.TryBeginRx(out var turn));
        Assert.Equal(RxReadResult.NoBuffers, turn.ReadFrom(_ours.Handle, Template(), 65536, out var bytes, out _, out _));
        Assert.True(turn.RanDry);
        turn.Complete();
        Assert.Equal(0, bytes);
        Assert.Equal(100, _ours.QueuedBytes());
    }

    [Theory]
    [InlineData(1u)]
    [InlineData(Room - 1u)]
    [InlineData(Room)]
    [InlineData(Room + 1u)]
    [InlineData(3 * Room + 7u)]
    public void The_credit_limit_is_respected_to_the_byte(uint maxBytes)
    {
        _rig.PostRxBuffers(8);
        var data = Pattern(8 * Room, 6);
        _peer.Send(data);

        Assert.Equal(RxReadResult.Data, Read(maxBytes, out var bytes, out var offered));
        Assert.Equal((int)maxBytes, bytes);
        Assert.Equal((int)maxBytes, offered); // the room offered is cut to the credit, so a full read is not "drained"
        var packets = _rig.TakeRx();
        Assert.Equal((int)((maxBytes + Room - 1) / Room), packets.Count);
        Assert.Equal(data.AsSpan(0, (int)maxBytes).ToArray(), packets.SelectMany(p => p.Payload).ToArray());
        Assert.Equal(data.Length - (int)maxBytes, _ours.QueuedBytes());
    }

    [Fact]
    public void The_last_flags_go_on_the_last_buffer_read_only()
    {
        _rig.PostRxBuffers(4);
        _peer.Send(Pattern(2 * Room + 1, 7));

        Assert.Equal(RxReadResult.Data, Read(65536, out _, out _, lastFlags: VsockSeqFlags.Eom | VsockSeqFlags.Eor));
        var flags = _rig.TakeRx().Select(p => p.Header.Flags).ToList();
        Assert.Equal([0u, 0u, VsockSeqFlags.Eom | VsockSeqFlags.Eor], flags);
    }

    [Fact]
    public void Unusable_buffers_are_handed_back_empty_and_the_packet_takes_the_next_good_one()
    {
        var readOnly = _rig.PostRxChain(new GuestBuffer(_rig.Alloc(4096), 4096, false));
        var tooShort = _rig.PostRxChain(new GuestBuffer(_rig.Alloc(20), 20, true));
        var outside = _rig.PostRxChain(new GuestBuffer(0xFFFF_0000_0000, 4096, true));
        var good = _rig.PostRx();

        Assert.True(_rig.Backend.TryBeginRx(out var turn));
        Assert.True(turn.TryWriteControl(Template(VsockOp.Response)));
        Assert.Equal(4, turn.Used);
        turn.Complete();

        var packets = _rig.TakeRx();
        Assert.Equal([readOnly, tooShort, outside, good], packets.Select(p => p.Head));
        Assert.Equal([0u, 0u, 0u, (uint)VsockConstants.HeaderSize], packets.Select(p => p.UsedLength));
        Assert.Equal(VsockOp.Response, packets[3].Op);
        Assert.Equal(1ul, _rig.TakeRxCalls());
        Assert.Contains(_rig.Log.Warnings, w => w.Contains("unusable"));
        Assert.Contains(_rig.Log.Warnings, w => w.Contains("dropped"));
    }

    [Fact]
    public void A_header_only_buffer_cannot_carry_payload_and_is_handed_back()
    {
        var headerOnly = _rig.PostRx((uint)VsockConstants.HeaderSize);
        var good = _rig.PostRx();
        _peer.Send(Pattern(100, 8));

        Assert.Equal(RxReadResult.Data, Read(65536, out var bytes, out _));
        Assert.Equal(100, bytes);
        var packets = _rig.TakeRx();
        Assert.Equal([headerOnly, good], packets.Select(p => p.Head));
        Assert.Equal([0u, 144u], packets.Select(p => p.UsedLength));
    }

    public static TheoryData<string> BadChains => ["read-only", "outside memory", "head out of range"];

    private void PostBad(string kind)
    {
        switch (kind)
        {
            case "read-only":
                _rig.PostRxChain(new GuestBuffer(_rig.Alloc(4096), 4096, false));
                break;
            case "outside memory":
                _rig.PostRxChain(new GuestBuffer(0xFFFF_0000_0000, 4096, true));
                break;
            default:
                _rig.Rx.Publish(DeviceRig.QueueSize + 1); // an avail entry naming no descriptor
                break;
        }
    }

    [Theory]
    [MemberData(nameof(BadChains))]
    public void A_read_stops_at_an_unusable_buffer_so_a_short_read_still_gives_every_unused_buffer_back(string bad)
    {
        var a = _rig.PostRx();
        PostBad(bad);
        var c = _rig.PostRx();

        // Nothing to read: no buffer is used, not even the good one before the bad one.
        Assert.Equal(RxReadResult.WouldBlock, Read(65536, out _, out _));
        Assert.Equal(0, _rig.Rx.UsedIdx);

        // The read takes the buffers up to the bad one; the next read hands the bad one back and goes on.
        var data = Pattern(Room + 500, 9);
        _peer.Send(data);
        Assert.Equal(RxReadResult.Data, Read(65536, out var bytes, out var offered));
        Assert.Equal(Room, bytes);
        Assert.Equal(Room, offered);
        Assert.Equal(RxReadResult.Data, Read(65536, out bytes, out _));
        Assert.Equal(500, bytes);

        var packets = _rig.TakeRx();
        Assert.Equal(a, packets[0].Head);
        Assert.Equal(c, packets[^1].Head);
        Assert.Equal(data, packets.SelectMany(p => p.Payload).ToArray());
        Assert.All(packets.Skip(1).SkipLast(1), p => Assert.Equal(0u, p.UsedLength)); // the bad one (if it has a head)
    }

    [Fact]
    public void One_read_takes_at_most_the_scratch_s_chains_and_the_rest_stay_posted()
    {
        _rig.PostRxBuffers(100, 256);
        var data = Pattern(100 * 212, 11);
        _peer.Send(data);

        Assert.Equal(RxReadResult.Data, Read(1 << 20, out var bytes, out var offered));
        Assert.Equal(64 * 212, bytes);
        Assert.Equal(bytes, offered); // all the room was used: the caller reads again
        Assert.Equal(36, _rig.Backend.Pending(VsockBackend.RxQueueIndex));
        Assert.Equal(RxReadResult.Data, Read(1 << 20, out var more, out _));
        Assert.Equal(36 * 212, more);
        Assert.Equal(data, _rig.TakeRx().SelectMany(p => p.Payload).ToArray());
    }

    [Fact]
    public void The_guest_is_notified_once_per_turn_unless_it_asked_not_to_be()
    {
        _rig.PostRxBuffers(6);
        Assert.True(_rig.Backend.TryBeginRx(out var turn));
        for (var i = 0; i < 3; i++)
            Assert.True(turn.TryWriteControl(Template(VsockOp.CreditUpdate)));
        turn.Complete();
        Assert.Equal(1ul, _rig.TakeRxCalls());

        _rig.Rx.AvailFlags = SplitRingLayout.AvailFlagNoInterrupt;
        Assert.True(_rig.Backend.TryBeginRx(out turn));
        for (var i = 0; i < 3; i++)
            Assert.True(turn.TryWriteControl(Template(VsockOp.CreditUpdate)));
        turn.Complete();
        Assert.Equal(6, _rig.Rx.UsedIdx);
        Assert.Equal(0ul, _rig.TakeRxCalls());
    }

    [Fact]
    public void With_event_idx_the_guest_is_notified_once_when_used_event_is_crossed()
    {
        using var rig = new DeviceRig(eventIdx: true);
        rig.PostRxBuffers(9);
        rig.Rx.UsedEvent = 0;

        void Turn(int packets)
        {
            Assert.True(rig.Backend.TryBeginRx(out var turn));
            for (var i = 0; i < packets; i++)
                Assert.True(turn.TryWriteControl(Template(VsockOp.CreditUpdate)));
            turn.Complete();
        }

        Turn(3); // used 0 → 3 crosses used_event 0
        Assert.Equal(1ul, rig.TakeRxCalls());
        rig.Rx.UsedEvent = 10;
        Turn(3); // 3 → 6: not yet
        Assert.Equal(0ul, rig.TakeRxCalls());
        rig.Rx.UsedEvent = 7;
        Turn(3); // 6 → 9 crosses 7
        Assert.Equal(1ul, rig.TakeRxCalls());
    }

    [Fact]
    public void The_turn_counts_the_payload_bytes_it_wrote_not_the_headers()
    {
        _rig.PostRxBuffers(4);
        _peer.Send(Pattern(5000, 12));
        Assert.True(_rig.Backend.TryBeginRx(out var turn));
        Assert.True(turn.TryWriteControl(Template(VsockOp.CreditUpdate)));
        Assert.Equal(0u, turn.PayloadBytes);
        Assert.True(turn.TryWriteData(Template(), Pattern(100, 13), out _));
        Assert.Equal(RxReadResult.Data, turn.ReadFrom(_ours.Handle, Template(), 65536, out _, out _, out _));
        Assert.Equal(5100u, turn.PayloadBytes);
        turn.Complete();
    }

    [Fact]
    public void An_empty_turn_publishes_nothing_and_notifies_nobody()
    {
        _rig.PostRx();
        Assert.True(_rig.Backend.TryBeginRx(out var turn));
        turn.Complete();
        Assert.Equal(0, _rig.Rx.UsedIdx);
        Assert.Equal(0ul, _rig.TakeRxCalls());
    }
}

internal static class UnixSocketTestExtensions
{
    /// <summary>Bytes waiting in the socket's receive queue, counted by peeking so nothing is consumed.</summary>
    public static int QueuedBytes(this UnixSocket socket)
    {
        var buffer = new byte[1 << 20];
        var n = StreamIo.Peek(socket.Handle, buffer);
        return n == StreamIo.WouldBlock ? 0 : n;
    }
}
