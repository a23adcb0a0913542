using Vsock.Device.Backend;
using Vsock.Device.Diagnostics;
using Vsock.Device.Packets;

namespace Vsock.Device.Connections;

/// <summary>
/// The device's queue of streams that have something for the guest (the reference's backend_rxq, without
/// duplicates), and the packets the device answers itself (an RST for a packet on no stream). When the guest has
/// RX buffers the device lends them with <see cref="Fill"/>: its own replies first, then the streams round-robin,
/// each filling at most <see cref="Quantum"/> payload bytes per round, so a flood on one stream cannot starve
/// another. A stream that runs the ring dry keeps its place at the front for the rest of its quantum, which it may
/// use over several turns (a guest that posts a few buffers at a time gets the streams in turn too).
///
/// Akka-free and single-threaded: the VM's device owns it on the VM's event-loop thread.
/// </summary>
public sealed class RxScheduler : IStreamHost
{
    /// <summary>Payload bytes a stream may fill per round: one 64 KiB socket read, the largest packet Linux sends.</summary>
    public const uint Quantum = 64 * 1024;

    /// <summary>RX buffers one turn may use before the device lets other work in (it asks for another turn).</summary>
    public const int TurnBudget = 256;

    /// <summary>Device replies kept while the guest posts no RX buffer; beyond this a hostile guest's packets go unanswered.</summary>
    public const int MaxReplies = 1024;

    private readonly Queue<VsockStream> _ready = new();
    private readonly Queue<VsockHeader> _replies = new();
    private readonly Action _requestTurn;
    private readonly Action<VsockStream> _finished;
    private bool _turnRequested;
    /// <summary>Payload bytes the stream at the front has sent in its current round (over turns that ran the ring dry).</summary>
    private uint _frontSpent;

    /// <param name="requestTurn">Asks the device for an RX turn soon (sends itself a message); coalesced here.</param>
    /// <param name="finished">A stream is over: the device drops it and stops its owner.</param>
    public RxScheduler(ulong guestCid, DeviceLog log, Action requestTurn, Action<VsockStream> finished, DeviceCounters? counters = null)
    {
        GuestCid = guestCid;
        Log = log;
        Counters = counters ?? new DeviceCounters();
        _requestTurn = requestTurn;
        _finished = finished;
    }

    public ulong GuestCid { get; }

    public DeviceLog Log { get; }

    public DeviceCounters Counters { get; }

    /// <summary>Streams waiting for a turn.</summary>
    public int ReadyCount => _ready.Count;

    public bool HasWork => _ready.Count > 0 || _replies.Count > 0;

    /// <summary>The last turn stopped because the guest had no RX buffer left, with work still queued.</summary>
    public bool WaitingForBuffers { get; private set; }

    public void ScheduleRx(VsockStream stream)
    {
        if (stream.Has(StreamStatus.RxQueued | StreamStatus.Finished))
            return;
        stream.MarkRxQueued(true);
        _ready.Enqueue(stream);
        RequestTurn();
    }

    public void StreamFinished(VsockStream stream) => _finished(stream);

    /// <summary>A packet the device answers itself (no stream behind it).</summary>
    public void Reply(in VsockHeader header)
    {
        if (_replies.Count >= MaxReplies)
        {
            Log.Warning(LogTopic.Limit, $"{MaxReplies} replies wait for RX buffers; dropping {header}");
            return;
        }
        _replies.Enqueue(header);
        RequestTurn();
    }

    /// <summary>One RX turn: replies, then the ready streams round-robin, until the ring or the turn's budget runs out.</summary>
    public void Fill(ref RxTurn turn)
    {
        WaitingForBuffers = false;
        while (_replies.TryPeek(out var reply))
        {
            if (!turn.TryWriteControl(reply))
            {
                WaitingForBuffers = true;
                return;
            }
            _replies.Dequeue();
        }
        // Bounded even if a stream keeps saying it has work and then sends nothing (it must not, but a loop
        // here would freeze the VM): a few rounds over the queue per turn, then a fresh turn.
        var visits = 0;
        var maxVisits = 4 * _ready.Count + 16;
        while (_ready.TryPeek(out var stream))
        {
            if (turn.Used >= TurnBudget || ++visits > maxVisits)
            {
                RequestTurn(); // more next turn; other messages (kicks, the VMM) go first
                return;
            }
            if (stream.Has(StreamStatus.Finished))
            {
                _ready.Dequeue();
                _frontSpent = 0;
                stream.MarkRxQueued(false);
                continue;
            }
            var before = turn.PayloadBytes;
            var result = stream.FillRx(ref turn, Quantum - _frontSpent);
            _frontSpent += turn.PayloadBytes - before;
            switch (result)
            {
                case RxFill.OutOfBuffers when _frontSpent < Quantum:
                    WaitingForBuffers = true;
                    Counters.RxBufferStarvation++;
                    return; // first again when the guest posts buffers, for the rest of its quantum
                case RxFill.OutOfBuffers:
                    WaitingForBuffers = true;
                    Counters.RxBufferStarvation++;
                    _ready.Dequeue();
                    _ready.Enqueue(stream);
                    _frontSpent = 0;
                    return;
                case RxFill.More:
                    _ready.Dequeue();
                    _ready.Enqueue(stream);
                    _frontSpent = 0;
                    break;
                default:
                    _ready.Dequeue();
                    _frontSpent = 0;
                    stream.MarkRxQueued(false);
                    if (stream.HasRxWork)
                        ScheduleRx(stream); // something new came up during its turn
                    break;
            }
        }
    }

    /// <summary>
    /// The device starts an RX turn (whether it asked for it or not, and whether it can fill anything): from here
    /// on a stream that gets work asks for a new one. Called first thing in every turn, so a request made while a
    /// turn's message was queued is never lost.
    /// </summary>
    public void BeginTurn() => _turnRequested = false;

    /// <summary>The guest's driver went away: nothing queued is owed any more.</summary>
    public void Clear()
    {
        while (_ready.TryDequeue(out var stream))
            stream.MarkRxQueued(false);
        _replies.Clear();
        _turnRequested = false;
        WaitingForBuffers = false;
        _frontSpent = 0;
    }

    /// <summary>Asks the device for an RX turn unless one is asked for already.</summary>
    public void RequestTurn()
    {
        if (_turnRequested)
            return;
        _turnRequested = true;
        _requestTurn();
    }
}
