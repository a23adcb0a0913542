using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Vsock.Device.Diagnostics;
using Vsock.Device.Interop;
using Vsock.Device.Memory;
using Vsock.Device.Packets;
using Vsock.Device.Virtio;

namespace Vsock.Device.Backend;

/// <summary>What one <see cref="RxTurn.ReadFrom"/> did.</summary>
public enum RxReadResult
{
    /// <summary>Bytes went into one or more RX buffers.</summary>
    Data,
    /// <summary>The socket had nothing (EAGAIN); no buffer was used.</summary>
    WouldBlock,
    /// <summary>The socket's peer shut its write side; no buffer was used.</summary>
    EndOfStream,
    /// <summary>The guest has no RX buffer posted; nothing was read (the data stays in the socket).</summary>
    NoBuffers,
    /// <summary>The read failed (the errno is returned); no buffer was used.</summary>
    Error,
    /// <summary>
    /// <see cref="RxTurn.ReadMessage"/> without a spill: the guest has buffers, but the message needs more of them
    /// than one read takes (<see cref="RxScratch"/>). Nothing was read.
    /// </summary>
    BeyondOneRead,
}

/// <summary>
/// One turn of filling the guest's RX ring, lent by <see cref="VsockBackend.TryBeginRx"/> to the stream that has
/// something for the guest. Every packet takes one RX buffer (a descriptor chain): a header-only control packet
/// (<see cref="TryWriteControl"/>), a payload copied from host memory (<see cref="TryWriteData"/>), or a payload read
/// straight from a host socket into the buffers' payload areas with one recvmsg (<see cref="ReadFrom"/>: the one
/// copy of the host → guest path; headers are written after the read, once the lengths are known).
///
/// A ref struct on purpose: it holds host pointers into guest memory (through the backend's scratch), and the
/// compiler keeps it from outliving the synchronous call it is lent to. Guest memory can only change (SET_MEM_TABLE,
/// ADD/REM_MEM_REG) between the VM loop's turns, never during one. <see cref="Complete"/> publishes the used
/// buffers and notifies the guest once for the whole turn.
/// </summary>
public unsafe ref struct RxTurn
{
    private readonly SplitQueue _queue;
    private readonly GuestMemory _memory;
    private readonly RxScratch _scratch;
    private readonly EventFd? _call;
    private readonly DeviceLog _log;
    private readonly DeviceCounters _counters;
    private int _used;
    private uint _payloadBytes;
    private bool _dry;

    internal RxTurn(SplitQueue queue, GuestMemory memory, RxScratch scratch, EventFd? call, DeviceLog log, DeviceCounters counters)
    {
        _counters = counters;
        _queue = queue;
        _memory = memory;
        _scratch = scratch;
        _call = call;
        _log = log;
    }

    /// <summary>RX buffers used (completed) in this turn so far.</summary>
    public readonly int Used => _used;

    /// <summary>The ring ran out of buffers in this turn (kicks are re-armed, so the guest's next buffer brings a kick).</summary>
    public readonly bool RanDry => _dry;

    /// <summary>Payload bytes written into RX buffers in this turn so far (headers not counted).</summary>
    public readonly uint PayloadBytes => _payloadBytes;

    /// <summary>Writes a header-only packet into the next RX buffer. False (nothing written) if the guest has none.</summary>
    public bool TryWriteControl(in VsockHeader header)
    {
        if (!TryTakeChain(0, 0, 0, out _))
            return false;
        var h = header;
        h.Len = 0;
        WriteHeader(0, h);
        Complete(0, 0);
        _counters.RxPackets++;
        return true;
    }

    /// <summary>
    /// Writes <paramref name="header"/> and as much of <paramref name="payload"/> as one RX buffer holds into the next
    /// buffer (<c>len</c> set to what fits; <paramref name="lastFlags"/> added when all of it fits). False if the guest
    /// has no buffer.
    /// </summary>
    // Scratch on the stack is written before it is read: no zeroing on the data path.
    [SkipLocalsInit]
    public bool TryWriteData(in VsockHeader header, ReadOnlySpan<byte> payload, out int written, uint lastFlags = 0)
    {
        written = 0;
        if (!TryTakeChain(0, 0, (uint)payload.Length, out var capacity))
            return false;
        written = (int)Math.Min(capacity, (uint)payload.Length);
        var h = header;
        h.Len = (uint)written;
        if (written == payload.Length)
            h.Flags |= lastFlags;
        WriteHeader(0, h);
        var iov = stackalloc IoVec[RxScratch.MaxSegmentsPerChain];
        var count = PayloadSegments(0, (uint)written, iov, RxScratch.MaxSegmentsPerChain);
        var source = payload[..written];
        for (var i = 0; i < count; i++)
        {
            var n = (int)iov[i].Length;
            source[..n].CopyTo(new Span<byte>(iov[i].Base, n));
            source = source[n..];
        }
        Complete(0, (uint)written);
        _payloadBytes += (uint)written;
        _counters.RxPackets++;
        _counters.RxBytes += written;
        return true;
    }

    /// <summary>
    /// Reads at most <paramref name="maxBytes"/> from <paramref name="socket"/> straight into as many RX buffers as
    /// needed, with one recvmsg: each buffer becomes one packet stamped from <paramref name="template"/> with its own
    /// <c>len</c> (and, with <paramref name="lastFlags"/>, extra flags on the last one). Buffers the read did not
    /// reach go back to the ring. <paramref name="offered"/> is the room the read was given, so a read of fewer
    /// bytes means the socket is drained.
    /// </summary>
    /// <param name="errno">The negated errno for <see cref="RxReadResult.Error"/>.</param>
    // Scratch on the stack is written before it is read: no zeroing on the data path.
    [SkipLocalsInit]
    public RxReadResult ReadFrom(SafeHandle socket, in VsockHeader template, uint maxBytes, out int bytes, out int offered,
        out int errno, uint lastFlags = 0, int recvFlags = 0)
    {
        bytes = 0;
        offered = 0;
        errno = 0;
        if (maxBytes == 0)
            return RxReadResult.WouldBlock;
        var chains = TakeChains(maxBytes, out var room);
        if (chains == 0)
            return RxReadResult.NoBuffers;

        var iov = stackalloc IoVec[RxScratch.MaxSegments];
        var iovCount = PayloadIov(chains, iov);
        offered = (int)room;

        var n = StreamIo.ReceiveVector(socket, iov, iovCount, recvFlags);
        if (n <= 0)
            return NothingRead(n, chains, out errno);
        bytes = n;
        CompleteFilled(chains, (uint)n, template, lastFlags);
        return RxReadResult.Data;
    }

    /// <summary>
    /// Reads the next message of a SEQPACKET socket with one recvmsg (a message cannot be read in parts: what does
    /// not fit is dropped, MSG_TRUNC) into RX buffers for <paramref name="rxBytes"/> payload bytes, followed by
    /// <paramref name="spill"/>. Without a spill the buffers must hold all <paramref name="rxBytes"/> (the message's
    /// length, peeked) or nothing is read (<see cref="RxReadResult.NoBuffers"/> when the ring ran out,
    /// <see cref="RxReadResult.BeyondOneRead"/> when one read's limits did). Each buffer becomes one packet stamped from <paramref name="template"/>; when
    /// the whole message landed in them the last one carries EOM (and EOR if the socket reported MSG_EOR). What went
    /// into the spill (<paramref name="bytes"/> - <paramref name="inRx"/>) is the caller's to send later, EOM on its
    /// last packet. <paramref name="messageFlags"/> is recvmsg's msg_flags (MSG_TRUNC: the message did not fit).
    /// </summary>
    // Scratch on the stack is written before it is read: no zeroing on the data path.
    [SkipLocalsInit]
    public RxReadResult ReadMessage(SafeHandle socket, in VsockHeader template, uint rxBytes, Span<byte> spill,
        out int bytes, out int inRx, out int messageFlags, out int errno)
    {
        bytes = 0;
        inRx = 0;
        messageFlags = 0;
        errno = 0;
        uint room = 0;
        var dryBefore = _dry;
        _dry = false;
        var chains = rxBytes == 0 ? 0 : TakeChains(rxBytes, out room);
        var dryNow = _dry;
        _dry |= dryBefore;
        if (spill.IsEmpty && (chains == 0 || room < rxBytes))
        {
            GiveBack(0, chains);
            return chains == 0 || dryNow ? RxReadResult.NoBuffers : RxReadResult.BeyondOneRead;
        }

        var iov = stackalloc IoVec[RxScratch.MaxSegments + 1];
        var iovCount = PayloadIov(chains, iov);
        int n;
        fixed (byte* tail = spill)
        {
            if (!spill.IsEmpty)
                iov[iovCount++] = new IoVec { Base = tail, Length = (nuint)spill.Length };
            n = MessageIo.Receive(socket, iov, iovCount, out messageFlags);
        }
        if (n <= 0)
            return NothingRead(n, chains, out errno);
        bytes = n;
        inRx = (int)Math.Min((uint)n, room);
        var whole = (uint)n <= room && (messageFlags & Libc.MSG_TRUNC) == 0;
        var end = whole ? VsockSeqFlags.Eom | ((messageFlags & Libc.MSG_EOR) != 0 ? VsockSeqFlags.Eor : 0) : 0;
        CompleteFilled(chains, (uint)inRx, template, end);
        return RxReadResult.Data;
    }

    /// <summary>Takes buffers until their room covers <paramref name="want"/> (or the ring, or our scratch, runs out).</summary>
    private int TakeChains(uint want, out uint room)
    {
        var chains = 0;
        var segments = 0;
        room = 0;
        while (room < want && chains < RxScratch.MaxChains && segments < RxScratch.MaxSegments)
        {
            if (!TryTakeChain(chains, segments, want - room, out var capacity))
                break;
            room += capacity;
            segments += _scratch.SegmentCounts[chains];
            chains++;
        }
        return chains;
    }

    /// <summary>
    /// After a read of <paramref name="bytes"/> into the first of <paramref name="chains"/> taken buffers: completes
    /// the ones it reached as packets (<paramref name="lastFlags"/> on the last) and gives the others back.
    /// </summary>
    private void CompleteFilled(int chains, uint bytes, in VsockHeader template, uint lastFlags)
    {
        _payloadBytes += bytes;
        // The bytes filled the buffers in order: the first ones are full, one is partial, the rest are empty.
        var remaining = bytes;
        var filled = 0;
        while (filled < chains && remaining > 0)
        {
            var take = Math.Min(remaining, _scratch.Capacities[filled]);
            _scratch.Capacities[filled] = take;
            remaining -= take;
            filled++;
        }
        GiveBack(filled, chains);
        for (var c = 0; c < filled; c++)
        {
            var h = template;
            h.Len = _scratch.Capacities[c];
            if (c == filled - 1)
                h.Flags |= lastFlags;
            WriteHeader(c, h);
            Complete(c, h.Len);
        }
        _counters.RxReads++;
        _counters.RxPackets += filled;
        _counters.RxBytes += bytes;
    }

    /// <summary>Publishes the buffers used in this turn and notifies the guest if it asked to be (once per turn).</summary>
    public void Complete()
    {
        if (_used == 0)
            return;
        if (UsedRingPublisher.PublishAndNotify(_queue, _call))
            _counters.RxNotifications++;
        _used = 0;
    }

    /// <summary>
    /// Pops the next usable RX chain into scratch slot <paramref name="slot"/> (its segments from
    /// <paramref name="segmentStart"/> on) and returns its payload room, at most <paramref name="want"/> (and at
    /// least 1 when <paramref name="want"/> is not 0). Unusable chains on the way are handed back empty; but one met
    /// after chains already taken for this read (<paramref name="slot"/> &gt; 0) is left on the ring and ends the
    /// take: completing it now would keep those chains from going back to the ring if the read comes up short.
    /// </summary>
    private bool TryTakeChain(int slot, int segmentStart, uint want, out uint capacity)
    {
        capacity = 0;
        while (true)
        {
            var status = _queue.TryPop(out var chain, out var chainError, completeMalformed: false);
            if (status == PopStatus.Empty)
            {
                if (_queue.IsBroken)
                {
                    _dry = true;
                    return false;
                }
                // Re-arm kicks and look again: buffers may have been posted meanwhile.
                if (_queue.EnableNotification())
                    continue;
                _dry = true;
                return false;
            }
            var error = VsockPacketError.None;
            var packet = default(VsockPacket);
            if (status == PopStatus.Chain)
            {
                error = VsockPacket.TryFromRxChain(_memory, chain, out packet);
                if (error == VsockPacketError.None && want != 0 && packet.DataCapacity == 0)
                    error = VsockPacketError.DescriptorLengthTooSmall; // a header-only buffer cannot carry payload
            }
            if (status == PopStatus.Malformed || error != VsockPacketError.None)
            {
                if (slot > 0)
                {
                    // Good buffers are taken already: stop before this one, which the next turn hands back. Handing
                    // it back now would complete it ahead of them and so leave them unable to go back to the ring.
                    _queue.Rewind(1);
                    return false;
                }
                if (chain.HeadIndex < _queue.Size)
                {
                    _queue.AddUsed(chain.HeadIndex, 0);
                    _used++;
                }
                if (_log.Allow(LogTopic.BadChain))
                {
                    _log.Warning(status == PopStatus.Malformed
                        ? $"RX descriptor chain dropped: {chainError}"
                        : $"RX buffer {chain.HeadIndex} unusable: {VsockPacketErrors.Describe(error)}");
                }
                continue;
            }
            // Record the chain as host segments: the header area, then up to the room we need.
            var limit = VsockConstants.HeaderSize + (ulong)Math.Min(packet.DataCapacity, want);
            var count = 0;
            ulong covered = 0;
            foreach (var b in chain.Buffers)
            {
                if (covered == limit)
                    break;
                if (b.Length == 0)
                    continue;
                if (segmentStart + count == RxScratch.MaxSegments || count == RxScratch.MaxSegmentsPerChain)
                    break; // scratch full: use the room recorded so far
                var n = Math.Min(b.Length, limit - covered);
                _scratch.Segments[segmentStart + count] = new IoVec { Base = _memory.GetHostPointer(b.Address, n), Length = (nuint)n };
                covered += n;
                count++;
            }
            if (covered < VsockConstants.HeaderSize || (want != 0 && covered == VsockConstants.HeaderSize))
            {
                // Not even the header (or no payload room) fits in what scratch has left: leave it for the next read.
                _queue.Rewind(1);
                return false;
            }
            _scratch.Heads[slot] = chain.HeadIndex;
            _scratch.SegmentStarts[slot] = segmentStart;
            _scratch.SegmentCounts[slot] = count;
            capacity = (uint)(covered - VsockConstants.HeaderSize);
            _scratch.Capacities[slot] = capacity;
            return true;
        }
    }

    /// <summary>The payload areas of the <paramref name="chains"/> taken for a read, whole, as one iovec array (at most
    /// <see cref="RxScratch.MaxSegments"/> entries); returns how many it wrote.</summary>
    private readonly int PayloadIov(int chains, IoVec* iov)
    {
        var count = 0;
        for (var c = 0; c < chains; c++)
            count += PayloadSegments(c, _scratch.Capacities[c], iov + count, RxScratch.MaxSegments - count);
        return count;
    }

    /// <summary>
    /// A read that brought no byte (<paramref name="n"/> from the receive call: 0 at end of stream, else a negative
    /// errno, EAGAIN included): the <paramref name="chains"/> taken for it go back to the ring untouched, and the
    /// result says why; <paramref name="errno"/> is set for an error only.
    /// </summary>
    private RxReadResult NothingRead(int n, int chains, out int errno)
    {
        GiveBack(0, chains);
        errno = 0;
        if (n == 0)
            return RxReadResult.EndOfStream;
        if (n == StreamIo.WouldBlock)
            return RxReadResult.WouldBlock;
        errno = n;
        return RxReadResult.Error;
    }

    /// <summary>Iovecs for the first <paramref name="bytes"/> of slot <paramref name="slot"/>'s payload area.</summary>
    private readonly int PayloadSegments(int slot, uint bytes, IoVec* into, int max)
    {
        var start = _scratch.SegmentStarts[slot];
        var end = start + _scratch.SegmentCounts[slot];
        uint skip = VsockConstants.HeaderSize;
        var count = 0;
        for (var i = start; i < end && bytes > 0 && count < max; i++)
        {
            var segment = _scratch.Segments[i];
            var length = (uint)segment.Length;
            if (skip >= length)
            {
                skip -= length;
                continue;
            }
            var n = Math.Min(length - skip, bytes);
            into[count++] = new IoVec { Base = (byte*)segment.Base + skip, Length = n };
            bytes -= n;
            skip = 0;
        }
        return count;
    }

    // Scratch on the stack is written before it is read: no zeroing on the data path.
    [SkipLocalsInit]
    private readonly void WriteHeader(int slot, in VsockHeader header)
    {
        Span<byte> raw = stackalloc byte[VsockConstants.HeaderSize];
        header.Write(raw);
        var start = _scratch.SegmentStarts[slot];
        for (var i = start; !raw.IsEmpty; i++)
        {
            var segment = _scratch.Segments[i];
            var n = Math.Min(raw.Length, (int)segment.Length);
            raw[..n].CopyTo(new Span<byte>(segment.Base, n));
            raw = raw[n..];
        }
    }

    private void Complete(int slot, uint payloadLength)
    {
        _queue.AddUsed(_scratch.Heads[slot], VsockConstants.HeaderSize + payloadLength);
        _used++;
    }

    /// <summary>
    /// Slots [<paramref name="from"/>, <paramref name="to"/>) got no data: back to the ring. Nothing was completed
    /// since they were taken (<see cref="TryTakeChain"/> stops at an unusable chain), so all of them can be; were that
    /// ever not so, the ones that cannot would be handed back empty rather than lost.
    /// </summary>
    private void GiveBack(int from, int to)
    {
        var unused = to - from;
        if (unused == 0)
            return;
        var rewind = Math.Min(unused, _queue.Rewindable);
        _queue.Rewind(rewind);
        for (var c = from; c < to - rewind; c++)
        {
            _queue.AddUsed(_scratch.Heads[c], 0);
            _used++;
        }
    }
}

/// <summary>The backend's scratch for one RX turn: the chains taken for one read and their host segments.</summary>
internal sealed class RxScratch
{
    /// <summary>RX buffers one read may fill: 64 Linux buffers of 3.7-4 KiB cover the largest credit a guest gives at once.</summary>
    public const int MaxChains = 64;
    /// <summary>Host segments (headers included) for one read.</summary>
    public const int MaxSegments = 256;
    /// <summary>Segments recorded per chain; room beyond them is simply not used.</summary>
    public const int MaxSegmentsPerChain = 64;

    public readonly ushort[] Heads = new ushort[MaxChains];
    public readonly int[] SegmentStarts = new int[MaxChains];
    public readonly int[] SegmentCounts = new int[MaxChains];
    public readonly uint[] Capacities = new uint[MaxChains];
    public readonly IoVec[] Segments = new IoVec[MaxSegments];
}
