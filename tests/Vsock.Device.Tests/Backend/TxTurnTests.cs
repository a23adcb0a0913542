using System.Net.Sockets;
using System.Text;
using Vsock.Device.Backend;
using Vsock.Device.Connections;
using Vsock.Device.Interop;
using Vsock.Device.Packets;
using Vsock.Device.Tests.TestSupport;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.Backend;

/// <summary>
/// One TX turn over fake guest memory and a mock driver: well-formed packets in ring order, malformed chains
/// completed and skipped, the budget, payloads gathered per stream and written with one sendmsg each, and chains
/// returned to the guest only when the turn completes.
/// </summary>
public sealed class TxTurnTests : IDisposable
{
    private static readonly ConnectionKey A = new(VsockConstants.HostCid, 1024, 5000);
    private static readonly ConnectionKey B = new(VsockConstants.HostCid, 1025, 5001);
    private readonly DeviceRig _rig = new();

    public void Dispose() => _rig.Dispose();

    private static VsockHeader Rw(ConnectionKey key) => DeviceRig.FromGuest(key, VsockOp.Rw);

    private static byte[] Text(string s) => Encoding.ASCII.GetBytes(s);

    [Fact]
    public void Packets_come_in_ring_order_and_malformed_chains_are_completed_and_skipped()
    {
        _rig.SendTx(Rw(A), Text("one"));
        var header = _rig.Alloc(44);
        Rw(A).Write(_rig.Ram.Bytes(header, 44));
        _rig.Tx.AddChain(new GuestBuffer(header, 44, true));                     // device-writable header
        _rig.Tx.AddChain(new GuestBuffer(header, 30, false));                    // shorter than a header
        _rig.Tx.AddChain(new GuestBuffer(0xFFFF_0000_0000, 44, false));          // outside guest memory
        _rig.SendTx(Rw(A) with { Len = 100 }, Text("short"), keepLen: true);     // len beyond the chain
        _rig.SendTx(Rw(A), Text("two"));
        var seen = new List<string>();

        var handled = _rig.RunTx((ref VsockPacket p, ref TxTurn _) =>
        {
            var buffer = new byte[p.Len];
            p.CopyDataTo(buffer);
            seen.Add(Encoding.ASCII.GetString(buffer));
        });

        Assert.Equal(2, handled);
        Assert.Equal(["one", "two"], seen);
        Assert.Equal(6, _rig.Tx.UsedIdx);
        for (ushort i = 0; i < 6; i++)
            Assert.Equal(0u, _rig.Tx.UsedElement(i).Length);
        Assert.Equal(4, _rig.Log.Warnings.Count);
    }

    [Fact]
    public void Chains_go_back_to_the_guest_only_when_the_turn_completes()
    {
        for (var i = 0; i < 3; i++)
            _rig.SendTx(Rw(A), Text("x"));
        var usedDuringTurn = new List<ushort>();

        _rig.RunTx((ref VsockPacket _, ref TxTurn _) => usedDuringTurn.Add(_rig.Tx.UsedIdx));

        Assert.Equal([0, 0, 0], usedDuringTurn);
        Assert.Equal(3, _rig.Tx.UsedIdx);
        Assert.Equal(1ul, _rig.TakeTxCalls()); // one notification for the turn
    }

    [Fact]
    public void The_budget_bounds_one_turn_and_the_rest_waits_for_the_next()
    {
        for (var i = 0; i < 5; i++)
            _rig.SendTx(Rw(A), Text($"{i}"));

        Assert.True(_rig.Backend.TryBeginTx(3, out var turn));
        var count = 0;
        while (turn.TryNext(out _))
            count++;
        Assert.True(turn.BudgetExhausted);
        Assert.Equal(3, turn.Popped);
        turn.Complete();
        Assert.Equal(3, count);
        Assert.Equal(3, _rig.Tx.UsedIdx);

        Assert.Equal(2, _rig.RunTx((ref VsockPacket _, ref TxTurn _) => { }, budget: 3));
        Assert.Equal(5, _rig.Tx.UsedIdx);
    }

    [Fact]
    public void Malformed_chains_count_against_the_budget()
    {
        for (var i = 0; i < 4; i++)
            _rig.Tx.AddChain(new GuestBuffer(0xFFFF_0000_0000, 44, false));
        _rig.SendTx(Rw(A), Text("late"));

        Assert.Equal(0, _rig.RunTx((ref VsockPacket _, ref TxTurn _) => { }, budget: 4));
        Assert.Equal(4, _rig.Tx.UsedIdx);
        Assert.Equal(1, _rig.RunTx((ref VsockPacket _, ref TxTurn _) => { }, budget: 4));
    }

    [Fact]
    public void Payloads_of_one_stream_are_written_in_one_call_per_turn_in_order()
    {
        var a = new RecordingTarget();
        var b = new RecordingTarget();
        _rig.SendTx(Rw(A), Text("a1"));
        _rig.SendTx(Rw(B), Text("b1"));
        _rig.SendTx(Rw(A), Text("a2"));
        _rig.SendTx(Rw(B), Text("b2"));
        _rig.SendTx(Rw(A), Text("a3"));

        _rig.RunTx((ref VsockPacket p, ref TxTurn t) =>
        {
            var target = p.DstPort == A.PeerPort ? a : b;
            Assert.True(t.Gather(target, ref p));
            Assert.Empty(target.Calls); // nothing is written before the turn ends
        });

        Assert.Equal(["a1a2a3"], a.Calls);
        Assert.Equal(["b1b2"], b.Calls);
    }

    [Fact]
    public void Flush_writes_one_stream_s_payloads_now_and_what_it_gathers_later_goes_after()
    {
        var a = new RecordingTarget();
        var b = new RecordingTarget();
        _rig.SendTx(Rw(A), Text("a1"));
        _rig.SendTx(Rw(B), Text("b1"));
        _rig.SendTx(DeviceRig.FromGuest(A, VsockOp.Shutdown));
        _rig.SendTx(Rw(A), Text("a2"));

        _rig.RunTx((ref VsockPacket p, ref TxTurn t) =>
        {
            var target = p.DstPort == A.PeerPort ? a : b;
            if (p.Op == VsockOp.Shutdown)
            {
                t.Flush(target);
                Assert.Equal(["a1"], a.Calls);
                Assert.Empty(b.Calls);
                return;
            }
            Assert.True(t.Gather(target, ref p));
        });

        Assert.Equal(["a1", "a2"], a.Calls);
        Assert.Equal(["b1"], b.Calls);
    }

    [Fact]
    public void A_fragmented_payload_is_gathered_segment_by_segment()
    {
        var a = new RecordingTarget();
        var payload = new byte[10000];
        new Random(1).NextBytes(payload);
        _rig.SendTxFragmented(Rw(A), payload, 1000);

        _rig.RunTx((ref VsockPacket p, ref TxTurn t) => Assert.True(t.Gather(a, ref p)));

        Assert.Equal(10, Assert.Single(a.SegmentCounts));
        Assert.Equal(payload, a.Bytes.ToArray());
    }

    [Fact]
    public void A_payload_in_more_segments_than_one_write_takes_is_not_gathered()
    {
        var a = new RecordingTarget();
        _rig.SendTxFragmented(Rw(A), new byte[StreamIo.MaxVectorSegments + 1], 1);
        var gathered = true;

        _rig.RunTx((ref VsockPacket p, ref TxTurn t) => gathered = t.Gather(a, ref p));

        Assert.False(gathered); // the stream copies it instead
        Assert.Empty(a.Calls);
    }

    [Fact]
    public void More_segments_than_one_write_takes_go_out_in_batches_in_order()
    {
        var a = new RecordingTarget();
        var expected = new StringBuilder();
        for (var i = 0; i < 100; i++)
        {
            var text = $"[{i}]";
            expected.Append(text);
            _rig.SendTx(Rw(A), Text(text));
        }

        _rig.RunTx((ref VsockPacket p, ref TxTurn t) => Assert.True(t.Gather(a, ref p)), budget: 128);

        Assert.Equal([StreamIo.MaxVectorSegments, 100 - StreamIo.MaxVectorSegments], a.SegmentCounts);
        Assert.Equal(expected.ToString(), string.Concat(a.Calls));
    }

    [Fact]
    public void Gathered_payloads_reach_a_real_socket_in_order_with_one_sendmsg()
    {
        var (ours, theirs) = UnixSocket.Pair();
        using var _ = ours;
        using var peer = theirs.ToSocket();
        var target = new SocketTarget(ours);
        var expected = new List<byte>();
        for (var i = 0; i < 40; i++)
        {
            var payload = new byte[1000 + i];
            new Random(i).NextBytes(payload);
            expected.AddRange(payload);
            _rig.SendTx(Rw(A), payload);
        }

        _rig.RunTx((ref VsockPacket p, ref TxTurn t) => Assert.True(t.Gather(target, ref p)));

        Assert.Equal(1, target.Calls);
        Assert.Equal(expected.Count, target.Written);
        var received = new byte[expected.Count];
        peer.ReceiveTimeout = 5000;
        var got = 0;
        while (got < received.Length)
            got += peer.Receive(received, got, received.Length - got, SocketFlags.None);
        Assert.Equal(expected.ToArray(), received);
    }

    /// <summary>Keeps each gathered write as one string (and its segment count).</summary>
    private sealed unsafe class RecordingTarget : ITxTarget
    {
        public List<string> Calls { get; } = [];
        public List<int> SegmentCounts { get; } = [];
        public List<byte> Bytes { get; } = [];

        public void SendGathered(ReadOnlySpan<IoVec> segments)
        {
            var call = new List<byte>();
            foreach (var s in segments)
                call.AddRange(new ReadOnlySpan<byte>(s.Base, (int)s.Length).ToArray());
            Bytes.AddRange(call);
            Calls.Add(Encoding.ASCII.GetString(call.ToArray()));
            SegmentCounts.Add(segments.Length);
        }
    }

    /// <summary>Writes each gathered batch with one sendmsg, as a host stream does, and counts the calls.</summary>
    private sealed unsafe class SocketTarget(UnixSocket socket) : ITxTarget
    {
        public int Calls { get; private set; }
        public int Written { get; private set; }

        public void SendGathered(ReadOnlySpan<IoVec> segments)
        {
            Calls++;
            fixed (IoVec* iov = segments)
                Written += StreamIo.SendVector(socket.Handle, iov, segments.Length);
        }
    }
}
