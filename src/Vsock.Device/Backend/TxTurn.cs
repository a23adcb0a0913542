using System.Runtime.CompilerServices;
using Vsock.Device.Diagnostics;
using Vsock.Device.Interop;
using Vsock.Device.Memory;
using Vsock.Device.Packets;
using Vsock.Device.Virtio;

namespace Vsock.Device.Backend;

/// <summary>
/// Whoever writes guest data to a host socket (a stream): takes the payload segments of one or more TX packets,
/// still in guest memory, in one gathered write, and copies only what the socket refuses.
/// </summary>
internal interface ITxTarget
{
    /// <summary>Writes <paramref name="segments"/> (host pointers into guest memory, valid for this call only).</summary>
    void SendGathered(ReadOnlySpan<IoVec> segments);
}

/// <summary>
/// One turn of draining the guest's TX ring, from <see cref="VsockBackend.TryBeginTx"/>: <see cref="TryNext"/>
/// yields the well-formed packets one by one (malformed chains are completed and logged on the way); payloads
/// for host sockets are collected with <see cref="Gather"/> and written with one sendmsg per stream and turn,
/// straight from guest memory (the one copy of the guest → host path). <see cref="Complete"/> writes what was
/// gathered, then publishes the used TX chains and notifies the guest once: a chain goes back to the guest only
/// once its bytes were written or copied.
///
/// A ref struct on purpose: it lends guest memory (the packets and the gathered segments) for the length of the
/// device's synchronous turn and cannot be stored. Guest memory only changes between turns.
/// </summary>
public unsafe ref struct TxTurn
{
    private readonly SplitQueue _queue;
    private readonly GuestMemory _memory;
    private readonly TxScratch _scratch;
    private readonly EventFd? _call;
    private readonly DeviceLog _log;
    private readonly DeviceCounters _counters;
    private readonly int _budget;
    private readonly bool _armWhenEmpty;
    private int _popped;
    private bool _budgetExhausted;

    internal TxTurn(SplitQueue queue, GuestMemory memory, TxScratch scratch, EventFd? call, DeviceLog log, DeviceCounters counters,
        int budget, bool armWhenEmpty)
    {
        _counters = counters;
        _queue = queue;
        _memory = memory;
        _scratch = scratch;
        _call = call;
        _log = log;
        _budget = budget;
        _armWhenEmpty = armWhenEmpty;
        queue.DisableNotification();
    }

    /// <summary>The budget ran out with chains possibly left: drain again soon.</summary>
    public readonly bool BudgetExhausted => _budgetExhausted;

    /// <summary>Chains taken off the ring in this turn.</summary>
    public readonly int Popped => _popped;

    /// <summary>
    /// The next well-formed TX packet, valid until the next call. Its chain is already completed (used length 0,
    /// as the device only reads TX buffers) but not yet published, so the guest cannot reuse it during the turn.
    /// </summary>
    public bool TryNext(out VsockPacket packet)
    {
        packet = default;
        while (true)
        {
            if (_popped == _budget)
            {
                _budgetExhausted = true;
                return false;
            }
            var status = _queue.TryPop(out var chain, out var chainError);
            if (status == PopStatus.Empty)
            {
                if (_queue.IsBroken || !_armWhenEmpty)
                    return false;
                if (_queue.EnableNotification())
                {
                    _queue.DisableNotification();
                    continue;
                }
                return false;
            }
            _popped++;
            if (status == PopStatus.Malformed)
            {
                if (_log.Allow(LogTopic.BadChain))
                    _log.Warning($"TX descriptor chain dropped: {chainError}");
                continue;
            }
            var error = VsockPacket.TryFromTxChain(_memory, chain, VsockConstants.MaxPacketPayload, out packet);
            // Unlike the reference, a chain that fails to parse is still returned to the guest.
            _queue.AddUsed(chain.HeadIndex, 0);
            if (error == VsockPacketError.None)
            {
                _counters.TxPackets++;
                _counters.TxBytes += packet.Header.Len;
                return true;
            }
            if (_log.Allow(LogTopic.BadPacket))
                _log.Warning($"TX packet dropped: {VsockPacketErrors.Describe(error)}");
        }
    }

    /// <summary>
    /// Queues <paramref name="packet"/>'s payload for <paramref name="target"/>'s next gathered write in this turn.
    /// False if the payload cannot be lent (not over guest memory, or too fragmented): the caller copies it.
    /// </summary>
    internal bool Gather(ITxTarget target, scoped ref VsockPacket packet)
    {
        var scratch = _scratch;
        if (scratch.SegmentCount + StreamIo.MaxVectorSegments > TxScratch.MaxSegments || scratch.TargetCount == TxScratch.MaxTargets)
            FlushAll();
        var index = Array.IndexOf(scratch.Targets, target, 0, scratch.TargetCount);
        if (index < 0)
        {
            index = scratch.TargetCount++;
            scratch.Targets[index] = target;
        }
        fixed (IoVec* segments = &scratch.Segments[scratch.SegmentCount])
        {
            var count = packet.GetDataSegments(segments, StreamIo.MaxVectorSegments);
            if (count < 0)
                return false;
            for (var i = 0; i < count; i++)
                scratch.SegmentTargets[scratch.SegmentCount + i] = index;
            scratch.SegmentCount += count;
        }
        return true;
    }

    /// <summary>Writes what was gathered for <paramref name="target"/> now (its next packet must come after the data).</summary>
    internal readonly void Flush(ITxTarget target)
    {
        var index = Array.IndexOf(_scratch.Targets, target, 0, _scratch.TargetCount);
        if (index >= 0)
            FlushTarget(index);
    }

    /// <summary>Writes everything gathered in this turn, stream by stream.</summary>
    public readonly void FlushAll()
    {
        var scratch = _scratch;
        for (var t = 0; t < scratch.TargetCount; t++)
            FlushTarget(t);
        Array.Clear(scratch.Targets, 0, scratch.TargetCount);
        scratch.TargetCount = 0;
        scratch.SegmentCount = 0;
    }

    // Scratch on the stack is written before it is read: no zeroing on the data path.
    [SkipLocalsInit]
    private readonly void FlushTarget(int index)
    {
        var scratch = _scratch;
        var target = scratch.Targets[index];
        if (target is null)
            return;
        scratch.Targets[index] = null;
        Span<IoVec> batch = stackalloc IoVec[StreamIo.MaxVectorSegments];
        var count = 0;
        for (var i = 0; i < scratch.SegmentCount; i++)
        {
            if (scratch.SegmentTargets[i] != index)
                continue;
            batch[count++] = scratch.Segments[i];
            if (count == batch.Length)
            {
                target.SendGathered(batch);
                count = 0;
            }
        }
        if (count > 0)
            target.SendGathered(batch[..count]);
    }

    /// <summary>Writes what was gathered, publishes the completed TX chains and notifies the guest if it asked to be.</summary>
    public void Complete()
    {
        FlushAll();
        if (_popped == 0)
            return;
        if (UsedRingPublisher.PublishAndNotify(_queue, _call))
            _counters.TxNotifications++;
        _popped = 0;
    }
}

/// <summary>The backend's scratch for one TX turn: the payload segments gathered per stream.</summary>
internal sealed class TxScratch
{
    public const int MaxTargets = 64;
    public const int MaxSegments = 512;

    public readonly ITxTarget?[] Targets = new ITxTarget?[MaxTargets];
    public readonly int[] SegmentTargets = new int[MaxSegments];
    public readonly IoVec[] Segments = new IoVec[MaxSegments];
    public int TargetCount;
    public int SegmentCount;
}
