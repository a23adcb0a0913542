using Vsock.Device.Connections;
using Vsock.Device.Packets;
using Vsock.Device.Tests.TestSupport;

namespace Vsock.Device.Tests.Connections;

/// <summary>
/// A sibling stream between fake guest rings (our guest) and a recording link (the other VM's device): the
/// sibling's packets wait in order for our guest's RX buffers and are split over them, our guest is held to the
/// sibling guest's credit, and what waits for our guest is bounded.
/// </summary>
public sealed class SiblingStreamTests : IDisposable
{
    private const ulong SiblingCid = 4;
    private static readonly ConnectionKey Key = new(SiblingCid, 5000, 49152);
    private readonly DeviceRig _rig = new();
    private readonly FakeStreamHost _host;
    private readonly RecordingSiblingLink _link = new();

    public SiblingStreamTests() => _host = new FakeStreamHost(_rig.DeviceLog);

    public void Dispose() => _rig.Dispose();

    private SiblingStream NewStream(ushort type = VsockType.Stream) => new(_host, _link, Key, type);

    /// <summary>A packet the sibling guest sent to ours (addresses as it wrote them).</summary>
    private static VsockHeader FromSibling(ushort op, uint len = 0, uint flags = 0, uint bufAlloc = 256 * 1024, uint fwdCnt = 0,
        ushort type = VsockType.Stream) => new()
        {
            SrcCid = SiblingCid,
            DstCid = DeviceRig.GuestCid,
            SrcPort = Key.PeerPort,
            DstPort = Key.GuestPort,
            Len = len,
            Type = type,
            Op = op,
            Flags = flags,
            BufAlloc = bufAlloc,
            FwdCnt = fwdCnt,
        };

    private static byte[] Pooled(ReadOnlySpan<byte> data)
    {
        var array = PayloadPool.Rent(data.Length);
        data.CopyTo(array);
        return array;
    }

    private static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    /// <summary>The guest posts 32 buffers and the stream has its RX turn.</summary>
    private List<RxPacket> Rx(SiblingStream stream)
    {
        _rig.PostRxBuffers(32);
        _rig.RunRx(stream);
        FakeStreamHost.EndTurn(stream);
        return _rig.TakeRx();
    }

    [Fact]
    public void Packets_from_the_sibling_wait_and_reach_our_guest_unchanged_in_order()
    {
        var stream = NewStream();
        stream.OnPeerPacket(FromSibling(VsockOp.Response), null);
        stream.OnPeerPacket(FromSibling(VsockOp.Rw, 3), Pooled("one"u8));
        stream.OnPeerPacket(FromSibling(VsockOp.Rw, 3), Pooled("two"u8));
        stream.OnPeerPacket(FromSibling(VsockOp.CreditUpdate, fwdCnt: 9), null);
        Assert.Equal(4, stream.InboundCount);
        Assert.Equal([stream], _host.Scheduled); // one turn asked for all of them

        var packets = Rx(stream);
        Assert.Equal([VsockOp.Response, VsockOp.Rw, VsockOp.Rw, VsockOp.CreditUpdate], packets.Select(p => p.Op));
        Assert.Equal(FromSibling(VsockOp.Rw, 3), packets[1].Header);
        Assert.Equal("one"u8.ToArray(), packets[1].Payload);
        Assert.Equal("two"u8.ToArray(), packets[2].Payload);
        Assert.Equal(9u, packets[3].Header.FwdCnt);
        Assert.Equal(0, stream.InboundCount);
        Assert.False(stream.HasRxWork);
        Assert.Equal(1, _host.Counters.StreamsOpened); // the sibling guest's RESPONSE set it up
    }

    [Fact]
    public void A_64_KiB_seqpacket_message_is_split_over_4_KiB_buffers_with_the_end_flags_on_the_last_part_only()
    {
        var stream = NewStream(VsockType.SeqPacket);
        var message = Pattern(65536, 1);
        const uint otherFlag = 1u << 4;
        var flags = VsockSeqFlags.Eom | VsockSeqFlags.Eor | otherFlag;
        stream.OnPeerPacket(FromSibling(VsockOp.Rw, 65536, flags, type: VsockType.SeqPacket), Pooled(message));

        var packets = Rx(stream);

        Assert.Equal(17, packets.Count);
        Assert.All(packets.Take(16), p => Assert.Equal(4052u, p.Header.Len));
        Assert.Equal(65536u - 16 * 4052, packets[^1].Header.Len);
        Assert.All(packets.Take(16), p => Assert.Equal(otherFlag, p.Header.Flags));
        Assert.Equal(flags, packets[^1].Header.Flags);
        Assert.All(packets, p => Assert.Equal(VsockConstants.HeaderSize + p.Header.Len, p.UsedLength));
        Assert.Equal(message, packets.SelectMany(p => p.Payload).ToArray());
        Assert.Equal(65536, _rig.Counters.RxBytes); // payloads copied into RX buffers count like those read from sockets
        Assert.Equal(17, _rig.Counters.RxPackets);
    }

    [Fact]
    public void A_message_cut_short_by_the_ring_resumes_where_it_stopped()
    {
        var stream = NewStream();
        var message = Pattern(20000, 2);
        stream.OnPeerPacket(FromSibling(VsockOp.Rw, 20000), Pooled(message));
        stream.OnPeerPacket(FromSibling(VsockOp.Rw, 5), Pooled("after"u8));
        _rig.PostRxBuffers(3);

        Assert.Equal(RxFill.OutOfBuffers, _rig.RunRx(stream));
        var first = _rig.TakeRx();
        Assert.Equal(3, first.Count);
        Assert.True(stream.HasRxWork);

        _rig.PostRxBuffers(8);
        Assert.Equal(RxFill.Idle, _rig.RunRx(stream));
        var rest = _rig.TakeRx();
        Assert.Equal(message, first.Concat(rest.SkipLast(1)).SelectMany(p => p.Payload).ToArray());
        Assert.Equal("after"u8.ToArray(), rest[^1].Payload);
    }

    [Fact]
    public void One_turn_gives_the_stream_about_a_quantum_and_says_more()
    {
        var stream = NewStream();
        for (var i = 0; i < 4; i++)
            stream.OnPeerPacket(FromSibling(VsockOp.Rw, 4000), Pooled(new byte[4000]));
        _rig.PostRxBuffers(8);

        Assert.True(_rig.Backend.TryBeginRx(out var turn));
        var fill = stream.FillRx(ref turn, 8000);
        turn.Complete();
        Assert.Equal(RxFill.More, fill);
        Assert.Equal(2, _rig.TakeRx().Count);
        Assert.Equal(2, stream.InboundCount);
    }

    [Fact]
    public void Our_guest_may_send_what_the_sibling_guest_granted_and_its_payload_is_copied_for_the_hop()
    {
        var stream = NewStream();
        stream.OnPeerPacket(FromSibling(VsockOp.Response, bufAlloc: 1000), null);
        Rx(stream);
        _rig.SendTx(DeviceRig.FromGuest(Key, VsockOp.Rw), Pattern(600, 3));
        _rig.SendTx(DeviceRig.FromGuest(Key, VsockOp.Rw), Pattern(400, 4));
        _rig.RunTx(stream);

        Assert.Equal(2, _link.Sent.Count);
        Assert.Equal(Pattern(600, 3), _link.Sent[0].Payload);
        Assert.Equal(Pattern(400, 4), _link.Sent[1].Payload);
        Assert.Equal(DeviceRig.FromGuest(Key, VsockOp.Rw) with { Len = 600 }, _link.Sent[0].Header);
        Assert.Equal(0u, stream.CreditSnapshot.PeerFreeCredit);

        // The sibling guest read 600 bytes: room for 600 more.
        stream.OnPeerPacket(FromSibling(VsockOp.CreditUpdate, bufAlloc: 1000, fwdCnt: 600), null);
        _rig.SendTx(DeviceRig.FromGuest(Key, VsockOp.Rw), new byte[600]);
        _rig.RunTx(stream);
        Assert.Equal(3, _link.Sent.Count);
        Assert.False(stream.Has(StreamStatus.Finished));
    }

    [Fact]
    public void Our_guest_beyond_the_sibling_s_credit_resets_both_ends()
    {
        var stream = NewStream();
        stream.OnPeerPacket(FromSibling(VsockOp.Response, bufAlloc: 1000), null);
        Rx(stream);
        _rig.SendTx(DeviceRig.FromGuest(Key, VsockOp.Rw), new byte[600]);
        _rig.SendTx(DeviceRig.FromGuest(Key, VsockOp.Rw), new byte[401]);
        _rig.RunTx(stream);

        Assert.Equal(2, _link.Sent.Count);
        var rst = _link.Sent[1];
        Assert.Null(rst.Payload);
        Assert.Equal(new VsockHeader
        {
            SrcCid = DeviceRig.GuestCid, DstCid = SiblingCid, SrcPort = Key.GuestPort, DstPort = Key.PeerPort,
            Type = VsockType.Stream, Op = VsockOp.Rst,
        }, rst.Header);
        Assert.Equal(VsockOp.Rst, Assert.Single(Rx(stream)).Op);
        Assert.Equal([stream], _host.Finished);
        Assert.Contains(_rig.Log.Warnings, w => w.Contains("beyond the credit"));
        Assert.Equal((1, 1, 0), (_host.Counters.StreamsOpened, _host.Counters.StreamsReset, _host.Counters.StreamsRefused));
    }

    [Fact]
    public void What_waits_for_our_guest_is_bounded_and_a_flood_resets_both_ends()
    {
        var stream = NewStream();
        for (var i = 0; i < SiblingStream.MaxInbound; i++)
            stream.OnPeerPacket(FromSibling(VsockOp.CreditUpdate), null);
        Assert.Equal(SiblingStream.MaxInbound, stream.InboundCount);
        Assert.Empty(_link.Sent);

        stream.OnPeerPacket(FromSibling(VsockOp.Rw, 3), Pooled("one"u8));

        Assert.Equal(0, stream.InboundCount); // dropped, not delivered
        Assert.Equal(VsockOp.Rst, Assert.Single(_link.Sent).Header.Op);
        Assert.Equal(VsockOp.Rst, Assert.Single(Rx(stream)).Op);
        Assert.Equal([stream], _host.Finished);

        stream.OnPeerPacket(FromSibling(VsockOp.Rw, 3), Pooled("two"u8));
        Assert.Equal(0, stream.InboundCount);
    }

    [Fact]
    public void Our_guest_s_rst_goes_to_the_sibling_and_finishes_the_stream()
    {
        var stream = NewStream();
        _rig.SendTx(DeviceRig.FromGuest(Key, VsockOp.Rst));
        _rig.RunTx(stream);
        Assert.Equal(VsockOp.Rst, Assert.Single(_link.Sent).Header.Op);
        Assert.Equal([stream], _host.Finished);
        Assert.False(stream.HasRxWork);
        Assert.Equal((0, 1), (_host.Counters.StreamsOpened, _host.Counters.StreamsRefused)); // an RST before any RESPONSE
    }

    [Fact]
    public void The_sibling_s_rst_reaches_our_guest_after_what_came_before_and_finishes_the_stream()
    {
        var stream = NewStream();
        stream.OnPeerPacket(FromSibling(VsockOp.Rw, 4), Pooled("last"u8));
        stream.OnPeerPacket(FromSibling(VsockOp.Rst), null);
        Assert.Equal([VsockOp.Rw, VsockOp.Rst], Rx(stream).Select(p => p.Op));
        Assert.Equal([stream], _host.Finished);
        Assert.Empty(_link.Sent);
    }

    [Fact]
    public void A_sibling_that_went_away_costs_our_guest_an_rst_and_the_sibling_is_not_told()
    {
        var stream = NewStream();
        stream.OnPeerPacket(FromSibling(VsockOp.Rw, 4), Pooled("lost"u8));
        stream.PeerGone();
        Assert.Equal(VsockOp.Rst, Assert.Single(Rx(stream)).Op);
        Assert.Empty(_link.Sent);
        Assert.Equal([stream], _host.Finished);
    }
}
