using Vsock.Device.Backend;
using Vsock.Device.Connections;
using Vsock.Device.Packets;
using Vsock.Device.Tests.TestSupport;

namespace Vsock.Device.Tests.Connections;

/// <summary>
/// The device's RX queue over fake guest rings: its own replies first, then the streams round-robin with a
/// quantum each, a stream that runs the ring dry first again, a bounded turn, and one turn request at a time.
/// </summary>
public sealed class RxSchedulerTests : IDisposable
{
    private const int PacketBytes = 4000;
    private readonly DeviceRig _rig = new(queueSize: 512);
    private readonly RxScheduler _scheduler;
    private readonly List<VsockStream> _finished = [];
    private int _turnRequests;

    public RxSchedulerTests() =>
        _scheduler = new RxScheduler(DeviceRig.GuestCid, _rig.DeviceLog, () => _turnRequests++, _finished.Add);

    public void Dispose() => _rig.Dispose();

    private ScriptedStream NewStream(uint port) => new(_scheduler, new ConnectionKey(VsockConstants.HostCid, port, 5000));

    /// <summary>One RX turn, as the device runs it: requests re-opened first, then the ring lent.</summary>
    private List<RxPacket> Fill()
    {
        _scheduler.BeginTurn();
        Assert.True(_rig.Backend.TryBeginRx(out var turn));
        try
        {
            _scheduler.Fill(ref turn);
        }
        finally
        {
            turn.Complete();
        }
        return _rig.TakeRx();
    }

    [Fact]
    public void A_flooding_stream_does_not_starve_another()
    {
        var flood = NewStream(1024);
        var quiet = NewStream(1025);
        flood.Feed(10_000);
        quiet.Feed(3);
        _rig.PostRxBuffers(200);

        var packets = Fill();

        // One quantum (64 KiB of 4000-byte packets: 17 packets) of the flood, then the quiet stream's three.
        var perQuantum = (int)((RxScheduler.Quantum + PacketBytes - 1) / PacketBytes);
        var quietAt = packets.Select((p, i) => (p, i)).Where(x => x.p.Header.SrcPort == 1025).Select(x => x.i).ToList();
        Assert.Equal(Enumerable.Range(perQuantum, 3), quietAt);
        Assert.Equal(200, packets.Count);
        Assert.Equal(0, quiet.Pending);
        Assert.True(flood.Pending > 0);
    }

    [Fact]
    public void Two_floods_alternate_a_quantum_at_a_time()
    {
        var a = NewStream(1024);
        var b = NewStream(1025);
        a.Feed(1000);
        b.Feed(1000);
        _rig.PostRxBuffers(200);

        var runs = Runs(Fill());

        Assert.True(runs.Count >= 10);
        Assert.All(runs.SkipLast(1), r => Assert.Equal(17, r));
    }

    [Fact]
    public void A_stream_that_keeps_running_the_ring_dry_goes_behind_the_others_once_it_had_its_quantum()
    {
        // The guest posts a few buffers per turn (fewer than a quantum's worth): whoever is first runs the ring dry
        // every turn. Its place at the front lasts for one quantum over those turns, not for ever.
        var a = NewStream(1024);
        var b = NewStream(1025);
        a.Feed(1000);
        b.Feed(1000);
        var packets = new List<RxPacket>();
        for (var turn = 0; turn < 20; turn++)
        {
            _rig.PostRxBuffers(5);
            packets.AddRange(Fill());
        }

        var runs = Runs(packets);

        Assert.Equal(100, packets.Count);
        Assert.True(runs.Count >= 5);
        Assert.All(runs.SkipLast(1), r => Assert.Equal(17, r));
    }

    /// <summary>Lengths of the runs of consecutive packets from one stream.</summary>
    private static List<int> Runs(List<RxPacket> packets)
    {
        var runs = new List<int>();
        for (var i = 0; i < packets.Count; i++)
        {
            if (i == 0 || packets[i].Header.SrcPort != packets[i - 1].Header.SrcPort)
                runs.Add(0);
            runs[^1]++;
        }
        return runs;
    }

    [Fact]
    public void The_device_s_own_replies_go_first()
    {
        var stream = NewStream(1024);
        stream.Feed(5);
        _scheduler.Reply(new VsockHeader { SrcCid = 2, DstCid = DeviceRig.GuestCid, Op = VsockOp.Rst, Type = VsockType.Stream });
        _rig.PostRxBuffers(10);

        var packets = Fill();

        Assert.Equal(VsockOp.Rst, packets[0].Op);
        Assert.All(packets.Skip(1), p => Assert.Equal(VsockOp.Rw, p.Op));
        Assert.Equal(6, packets.Count);
    }

    [Fact]
    public void A_stream_that_runs_the_ring_dry_keeps_its_place()
    {
        var a = NewStream(1024);
        var b = NewStream(1025);
        a.Feed(30);
        b.Feed(30);
        _rig.PostRxBuffers(10);
        Assert.All(Fill(), p => Assert.Equal(1024u, p.Header.SrcPort));
        Assert.Equal(2, _scheduler.ReadyCount);

        _rig.PostRxBuffers(5);
        Assert.All(Fill(), p => Assert.Equal(1024u, p.Header.SrcPort)); // a again, not b
    }

    [Fact]
    public void Replies_wait_for_buffers_in_order()
    {
        for (uint i = 0; i < 3; i++)
            _scheduler.Reply(new VsockHeader { SrcCid = 2, DstCid = DeviceRig.GuestCid, SrcPort = i, Op = VsockOp.Rst, Type = VsockType.Stream });
        Assert.Empty(Fill());
        Assert.True(_scheduler.HasWork);
        _rig.PostRxBuffers(3);
        Assert.Equal([0u, 1u, 2u], Fill().Select(p => p.Header.SrcPort));
        Assert.False(_scheduler.HasWork);
    }

    [Fact]
    public void One_turn_stops_after_its_budget_and_asks_for_another()
    {
        var a = NewStream(1024);
        var b = NewStream(1025);
        a.Feed(1000);
        b.Feed(1000);
        _rig.PostRxBuffers(400);
        var requestsBefore = _turnRequests;

        var used = Fill().Count;

        Assert.InRange(used, RxScheduler.TurnBudget, RxScheduler.TurnBudget + 17);
        Assert.Equal(requestsBefore + 1, _turnRequests);
        Assert.Equal(400 - used, _rig.Backend.Pending(VsockBackend.RxQueueIndex));
    }

    [Fact]
    public void Finished_streams_are_skipped_and_not_scheduled_again()
    {
        var a = NewStream(1024);
        var b = NewStream(1025);
        a.Feed(5);
        b.Feed(5);
        a.End();
        a.Feed(5); // a finished stream does not ask again
        _rig.PostRxBuffers(20);

        var packets = Fill();

        Assert.All(packets, p => Assert.Equal(1025u, p.Header.SrcPort));
        Assert.Equal(5, packets.Count);
        Assert.Equal([a], _finished);
        Assert.Equal(0, a.Turns);
        Assert.Equal(0, _scheduler.ReadyCount);
    }

    [Fact]
    public void Turn_requests_are_coalesced_and_a_turn_that_could_not_fill_allows_a_new_one()
    {
        var a = NewStream(1024);
        var b = NewStream(1025);
        a.Feed(1);
        b.Feed(1);
        a.Feed(1); // queued already: no second entry
        _scheduler.Reply(new VsockHeader { Op = VsockOp.Rst });
        Assert.Equal(1, _turnRequests);
        Assert.Equal(2, _scheduler.ReadyCount);

        _scheduler.BeginTurn(); // the device began a turn but the rings were not running
        _scheduler.Reply(new VsockHeader { Op = VsockOp.Rst });
        Assert.Equal(2, _turnRequests);

        _rig.PostRxBuffers(10);
        Assert.Equal(5, Fill().Count);
        a.Feed(1);
        Assert.Equal(3, _turnRequests); // the turn ran: the next work asks again
    }

    [Fact]
    public void A_stream_that_claims_work_and_sends_nothing_cannot_hold_the_turn()
    {
        var liar = new LyingStream(_scheduler, new ConnectionKey(VsockConstants.HostCid, 1024, 5000));
        liar.Poke();
        _rig.PostRxBuffers(10);
        var requests = _turnRequests;

        Assert.Empty(Fill());

        Assert.InRange(liar.Turns, 1, 4 + 16 + 1);
        Assert.Equal(requests + 1, _turnRequests);
    }

    [Fact]
    public void Clear_forgets_every_queued_stream_and_reply()
    {
        var a = NewStream(1024);
        a.Feed(3);
        _scheduler.Reply(new VsockHeader { Op = VsockOp.Rst });
        _scheduler.Clear();
        Assert.False(_scheduler.HasWork);
        Assert.False(a.Has(StreamStatus.RxQueued));
        _rig.PostRxBuffers(5);
        Assert.Empty(Fill());

        a.Feed(1); // it can be scheduled again
        Assert.Equal(4, Fill().Count);
    }

    [Fact]
    public void Replies_beyond_the_bound_are_dropped_with_a_rate_limited_warning()
    {
        for (var i = 0; i < RxScheduler.MaxReplies + 50; i++)
            _scheduler.Reply(new VsockHeader { Op = VsockOp.Rst });
        _rig.PostRxBuffers(500);
        var delivered = 0;
        for (var turn = 0; turn < 10 && _scheduler.HasWork; turn++)
        {
            delivered += Fill().Count;
            _rig.PostRxBuffers(Math.Min(500, RxScheduler.MaxReplies - delivered));
        }
        Assert.Equal(RxScheduler.MaxReplies, delivered);
        Assert.Equal(10, _rig.Log.Warnings.Count(w => w.Contains("replies wait")));
    }

    /// <summary>A stream with <see cref="Pending"/> 4000-byte packets for the guest, sent a quantum at a time as a real one does.</summary>
    private sealed class ScriptedStream : VsockStream
    {
        private static readonly byte[] Payload = new byte[PacketBytes];

        public ScriptedStream(IStreamHost host, ConnectionKey key) : base(host, 65536) => Open(key);

        public int Pending { get; private set; }

        public int Turns { get; private set; }

        public void Feed(int packets)
        {
            Pending += packets;
            Schedule();
        }

        public void End() => Finish();

        public override bool HasRxWork => Pending > 0 && !Has(StreamStatus.Finished);

        public override RxFill FillRx(ref RxTurn turn, uint quantum)
        {
            Turns++;
            uint sent = 0;
            while (Pending > 0)
            {
                if (sent >= quantum)
                    return RxFill.More;
                if (!turn.TryWriteData(Stamp(VsockOp.Rw), Payload, out var written))
                    return RxFill.OutOfBuffers;
                sent += (uint)written;
                Pending--;
            }
            return RxFill.Idle;
        }

        public override void OnGuestPacket(ref VsockPacket packet, ref TxTurn turn)
        {
        }
    }

    /// <summary>A broken stream: always says it has more, never sends anything.</summary>
    private sealed class LyingStream : VsockStream
    {
        public LyingStream(IStreamHost host, ConnectionKey key) : base(host, 65536) => Open(key);

        public int Turns { get; private set; }

        public void Poke() => Schedule();

        public override bool HasRxWork => true;

        public override RxFill FillRx(ref RxTurn turn, uint quantum)
        {
            Turns++;
            return RxFill.More;
        }

        public override void OnGuestPacket(ref VsockPacket packet, ref TxTurn turn)
        {
        }
    }
}
