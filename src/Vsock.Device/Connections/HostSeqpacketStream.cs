using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Vsock.Device.Backend;
using Vsock.Device.Diagnostics;
using Vsock.Device.Interop;
using Vsock.Device.Packets;

namespace Vsock.Device.Connections;

/// <summary>What kind of host socket a <see cref="HostSeqpacketStream"/> talks to: they differ in what Linux lets us do.</summary>
public enum HostSocketFamily
{
    /// <summary>AF_UNIX SOCK_SEQPACKET (<c>uds-path_PORT</c>, <c>uds-path_seqpacket</c>).</summary>
    Unix,
    /// <summary>AF_VSOCK SOCK_SEQPACKET (<c>forward-cid</c>, <c>forward-listen-seqpacket</c>).</summary>
    Vsock,
}

/// <summary>
/// A SEQPACKET stream between the guest (vsock type 2, VIRTIO_VSOCK_F_SEQPACKET) and a host SOCK_SEQPACKET socket:
/// every host message is one guest message and every guest message one host message. Set-up, control packets,
/// credit and shutdown are <see cref="HostStream"/>'s; the data path moves whole messages, still one copy each way.
///
/// Host → guest: a message can only be read whole (recvmsg truncates), so its length is peeked first
/// (recv(MSG_PEEK | MSG_TRUNC) into a 1-byte buffer) and it is read only once the guest's credit and the RX buffers taken
/// hold all of it: one recvmsg straight into those buffers, EOM (and EOR for MSG_EOR) on the last packet. Until then
/// it waits in the socket. A message larger than the guest's whole buffer (buf_alloc) could never be taken: Linux's
/// own sender refuses it with EMSGSIZE, but the host application has sent it already, so the stream is reset with a
/// log line. Two cases read part of a message into a spill buffer instead (a second copy for that part, sent as
/// credit and buffers come): a message that needs more RX buffers than one read takes (<see cref="RxScratch"/>), and
/// host AF_VSOCK sockets that cannot peek (Linux before 6.4), whose messages are at most the socket's buffer size.
///
/// Guest → host: a message's packets (up to EOM) are sent with one sendmsg, from guest memory when the whole
/// message came in one TX turn, else from the TX buffer, which holds whole messages the socket refused (EAGAIN:
/// SEQPACKET sends are all or nothing) and the message still open at its tail. Our buf_alloc is what the socket
/// can send as one message (unix: SO_SNDBUF - 32), so a Linux guest refuses a larger one itself (EMSGSIZE).
/// </summary>
public sealed class HostSeqpacketStream : HostStream
{
    private readonly HostSocketFamily _family;
    private readonly uint _txBufferSize;
    /// <summary>Whole messages in the TX buffer, oldest first (the open message at its tail is not one yet).</summary>
    private readonly Queue<TxMessage> _messages = new();
    /// <summary>Bytes of the guest's open message already in the TX buffer (its tail).</summary>
    private uint _open;
    /// <summary>Bytes of the guest's open message gathered in this TX turn and not yet handed back.</summary>
    private uint _gathered;
    /// <summary>The gathered bytes end the message (EOM seen); with EOR.</summary>
    private bool _gatheredEnd;
    private bool _gatheredEor;
    /// <summary>The next host message's length, once peeked; -1 while unknown.</summary>
    private int _next = -1;
    /// <summary>The socket cannot peek (AF_VSOCK before Linux 6.4): read into RX buffers plus a spill.</summary>
    private bool _peekUnsupported;
    /// <summary>The largest message the host socket can deliver to us when its length cannot be peeked.</summary>
    private uint _readBound;
    /// <summary>The rest of a host message that did not fit in one read's RX buffers, waiting for credit and buffers.</summary>
    private byte[]? _spill;
    private int _spillOffset;
    private int _spillEnd;
    private uint _spillEndFlags;

    private readonly record struct TxMessage(uint Length, bool EndOfRecord);

    /// <param name="socket">The host SOCK_SEQPACKET socket, owned by the stream from now on; null for a
    /// guest-initiated stream until its connect completes.</param>
    /// <param name="sendsOkLine">A client of <c>uds-path_seqpacket</c> gets one message <c>OK &lt;port&gt;\n</c>.</param>
    public HostSeqpacketStream(IStreamHost host, uint txBufferSize, SafeHandle? socket, bool sendsOkLine, HostSocketFamily family)
        : base(host, txBufferSize, socket, sendsOkLine, VsockType.SeqPacket)
    {
        _family = family;
        _txBufferSize = txBufferSize;
        if (socket is not null)
            SizeFor(socket);
    }

    /// <summary>Guest messages waiting in the TX buffer for the host socket (tests, diagnostics).</summary>
    public int TxMessagesQueued => _messages.Count;

    /// <summary>Whether part of a host message waits in the spill buffer for the guest (tests, diagnostics).</summary>
    public bool HoldsSpill => _spill is not null;

    private protected override void OnSocketConnected(SafeHandle socket) => SizeFor(socket);

    /// <summary>
    /// Fits our buf_alloc to the largest message the socket sends (before the guest learns it from REQUEST or
    /// RESPONSE): unix SOCK_SEQPACKET refuses a message over SO_SNDBUF - 32 with EMSGSIZE, so the send buffer is
    /// asked to hold tx-buffer-size (net.core.wmem_max may cap it; then our buf_alloc shrinks to match and a Linux
    /// guest refuses a larger message itself, with EMSGSIZE, as it does for any peer).
    /// </summary>
    private void SizeFor(SafeHandle socket)
    {
        try
        {
            if (_family == HostSocketFamily.Unix)
            {
                var largest = (uint)MessageIo.SetSendBuffer(socket, (int)Math.Min(_txBufferSize + 64u, int.MaxValue / 2));
                if (largest < Credit.BufAlloc)
                {
                    Host.Log.Debug($"{Key}: the host socket sends messages of at most {largest} bytes (net.core.wmem_max); advertising that, not {Credit.BufAlloc}");
                    Credit.BufAlloc = largest;
                }
            }
            else
            {
                _readBound = Interop.Vsock.GetBufferSize(socket);
            }
        }
        catch (LinuxException e)
        {
            // A socket that will not say: the defaults stand (a unix send too long for it then resets the stream).
            Host.Log.Debug($"{Key}: sizing the host socket failed: {e.Message}");
            _readBound = DefaultVsockBufferSize;
        }
    }

    /// <summary>Linux's default SO_VM_SOCKETS_BUFFER_SIZE.</summary>
    private const uint DefaultVsockBufferSize = 256 * 1024;

    public override bool HasRxWork
    {
        get
        {
            if (Has(StreamStatus.Finished))
                return false;
            if (PendingOps != RxOps.None)
                return true;
            var credit = Credit.PeerFreeCredit;
            var creditKnownShort = Has(StreamStatus.CreditRequested);
            if (_spill is not null)
                return credit > 0 || !creditKnownShort;
            if (!CanRead)
                return false;
            if (_next < 0)
                return !_peekUnsupported || credit > 0 || !creditKnownShort; // peek (or read) to find out
            return credit >= (uint)_next || !creditKnownShort;
        }
    }

    // ------------------------------------------------------------------ toward the guest

    private protected override RxFill FillData(ref RxTurn turn, uint quantum)
    {
        uint sent = 0;
        if (_spill is not null)
        {
            var spilled = FillFromSpill(ref turn, ref sent);
            if (spilled != RxFill.Idle || _spill is not null)
                return spilled;
        }
        while (CanRead)
        {
            if (sent >= quantum)
                return RxFill.More;
            if (_next < 0 && !_peekUnsupported && !PeekNext())
                break;
            if (_peekUnsupported)
            {
                var unknown = ReadUnknownLength(ref turn, ref sent);
                if (unknown != RxFill.Idle || _spill is not null)
                    return unknown;
                continue;
            }
            if (Has(StreamStatus.Finished) || Resetting)
                break;
            var length = (uint)_next;
            if (length > Credit.PeerBufAlloc)
            {
                Host.Log.Warning(LogTopic.StreamProtocol,
                    $"{Key}: a host message of {length} bytes can never fit the guest's buffer ({Credit.PeerBufAlloc} bytes; Linux refuses such a send with EMSGSIZE); resetting");
                return ResetNow(ref turn);
            }
            if (Credit.PeerFreeCredit < length)
            {
                OnCreditShort();
                break;
            }
            var result = turn.ReadMessage(Socket!, Stamp(VsockOp.Rw), length, default, out var n, out var inRx, out var flags, out var errno);
            if (result == RxReadResult.BeyondOneRead)
            {
                // More buffers than one read takes: the part that does not fit goes through a spill.
                _spill = PayloadPool.Rent((int)length);
                result = turn.ReadMessage(Socket!, Stamp(VsockOp.Rw), length, _spill.AsSpan(0, (int)length), out n, out inRx, out flags, out errno);
                if (result != RxReadResult.Data)
                    ReturnSpill();
            }
            switch (result)
            {
                case RxReadResult.Data:
                    _next = -1;
                    Credit.OnSent((uint)inRx);
                    Credit.OnAdvertised();
                    sent += (uint)inRx;
                    if (n > inRx)
                    {
                        KeepSpill(inRx, n, flags);
                        var spilled = FillFromSpill(ref turn, ref sent);
                        if (spilled != RxFill.Idle || _spill is not null)
                            return spilled;
                    }
                    else
                    {
                        ReturnSpill();
                    }
                    break;
                case RxReadResult.NoBuffers:
                    return RxFill.OutOfBuffers;
                case RxReadResult.WouldBlock:
                    _next = -1;
                    Clear(StreamStatus.HostReadable);
                    break;
                case RxReadResult.EndOfStream:
                    _next = -1;
                    OnHostEof();
                    break;
                default:
                    Host.Log.Debug($"{Key}: host socket read failed: {StreamIo.Describe(errno)}; resetting");
                    return ResetNow(ref turn);
            }
        }
        return RxFill.Idle;
    }

    /// <summary>
    /// Peeks the next message's length into <see cref="_next"/>; false when there is none to read now (drained, end
    /// of stream, an error: the state says which), or when the socket cannot peek.
    /// </summary>
    private bool PeekNext()
    {
        while (true)
        {
            var n = MessageIo.PeekLength(Socket!);
            if (n > 0)
            {
                _next = n;
                return true;
            }
            if (n == MessageIo.WouldBlock)
            {
                Clear(StreamStatus.HostReadable);
                return false;
            }
            if (n == MessageIo.PeekUnsupported || (_family == HostSocketFamily.Vsock && n == MessageIo.VsockPeekUnsupported))
            {
                // AF_VSOCK SEQPACKET before Linux 6.4: no MSG_PEEK (ENOMEM, taking nothing). Read with a spill from now on.
                _peekUnsupported = true;
                Host.Log.Debug($"{Key}: the host socket cannot peek a message's length; reading up to {_readBound} bytes with a spill");
                return true;
            }
            if (n < 0)
            {
                Host.Log.Debug($"{Key}: host socket read failed: {StreamIo.Describe(n)}; resetting");
                Reset();
                return false;
            }
            // 0: the end of the stream, or an empty message. A shutdown is permanent, so "not shut now" means an
            // empty message; after one, an empty message stands before others only if bytes are queued behind it
            // (empty messages at the very end are lost: they cannot cross virtio-vsock anyway). AF_VSOCK has none.
            if (_family == HostSocketFamily.Vsock || (MessageIo.PeerShutDown(Socket!) && MessageIo.QueuedBytes(Socket!) == 0))
            {
                OnHostEof();
                return false;
            }
            // An empty message cannot cross virtio-vsock (Linux sends nothing for a 0-byte SEQPACKET send).
            MessageIo.Discard(Socket!);
            if (Host.Log.Allow(LogTopic.StreamProtocol))
                Host.Log.Debug($"{Key}: dropped an empty host message (a vsock SEQPACKET message has at least one byte)");
        }
    }

    /// <summary>
    /// A socket that cannot peek: reads the next message into RX buffers for the credit the guest has, with the
    /// rest of <see cref="_readBound"/> as a spill (the peer refuses longer messages: they exceed our buf_alloc).
    /// </summary>
    private RxFill ReadUnknownLength(ref RxTurn turn, ref uint sent)
    {
        var credit = Credit.PeerFreeCredit;
        if (credit == 0)
        {
            OnCreditShort();
            return RxFill.Idle;
        }
        var bound = Math.Max(_readBound, 1u);
        var spill = PayloadPool.Rent((int)bound);
        _spill = spill;
        var result = turn.ReadMessage(Socket!, Stamp(VsockOp.Rw), Math.Min(credit, bound), spill.AsSpan(0, (int)bound),
            out var n, out var inRx, out var flags, out var errno);
        switch (result)
        {
            case RxReadResult.Data:
                if ((flags & (int)Libc.MSG_TRUNC) != 0 || (uint)n > Credit.PeerBufAlloc)
                {
                    ReturnSpill();
                    Host.Log.Warning(LogTopic.StreamProtocol,
                        $"{Key}: a host message of {n}+ bytes can never fit the guest's buffer ({Credit.PeerBufAlloc} bytes); resetting");
                    return ResetNow(ref turn);
                }
                Credit.OnSent((uint)inRx);
                Credit.OnAdvertised();
                sent += (uint)inRx;
                if (n > inRx)
                {
                    KeepSpill(inRx, n, flags);
                    return FillFromSpill(ref turn, ref sent);
                }
                ReturnSpill();
                return RxFill.Idle;
            case RxReadResult.NoBuffers:
                ReturnSpill();
                return RxFill.OutOfBuffers;
            case RxReadResult.WouldBlock:
                ReturnSpill();
                Clear(StreamStatus.HostReadable);
                return RxFill.Idle;
            case RxReadResult.EndOfStream:
                ReturnSpill();
                OnHostEof();
                return RxFill.Idle;
            default:
                ReturnSpill();
                Host.Log.Debug($"{Key}: host socket read failed: {StreamIo.Describe(errno)}; resetting");
                return ResetNow(ref turn);
        }
    }

    /// <summary>The message's bytes past <paramref name="inRx"/> are at the front of the spill.</summary>
    private void KeepSpill(int inRx, int total, int messageFlags)
    {
        _spillOffset = 0;
        _spillEnd = total - inRx;
        _spillEndFlags = VsockSeqFlags.Eom | ((messageFlags & Libc.MSG_EOR) != 0 ? VsockSeqFlags.Eor : 0);
    }

    /// <summary>Sends what waits in the spill as credit and RX buffers allow (a copy from our memory), EOM on the last packet.</summary>
    private RxFill FillFromSpill(ref RxTurn turn, ref uint sent)
    {
        while (_spill is not null)
        {
            var credit = Credit.PeerFreeCredit;
            if (credit == 0)
            {
                OnCreditShort();
                return RxFill.Idle;
            }
            var remaining = _spillEnd - _spillOffset;
            var chunk = (int)Math.Min((uint)remaining, credit);
            var last = chunk == remaining ? _spillEndFlags : 0;
            if (!turn.TryWriteData(Stamp(VsockOp.Rw), _spill.AsSpan(_spillOffset, chunk), out var written, last))
                return RxFill.OutOfBuffers;
            Credit.OnSent((uint)written);
            Credit.OnAdvertised();
            sent += (uint)written;
            _spillOffset += written;
            if (_spillOffset == _spillEnd)
                ReturnSpill();
        }
        return RxFill.Idle;
    }

    private void ReturnSpill()
    {
        if (_spill is { } spill)
        {
            _spill = null;
            PayloadPool.Return(spill);
        }
    }

    // ------------------------------------------------------------------ from the guest

    public override void OnGuestPacket(ref VsockPacket packet, ref TxTurn turn)
    {
        var h = packet.Header;
        if (h.Op == VsockOp.Shutdown && (h.Flags & VsockShutdownFlags.Send) != 0 && (_open > 0 || _gathered > 0) &&
            !Has(StreamStatus.Finished) && !Resetting)
        {
            // The guest stopped sending in the middle of a message (Linux: a send interrupted by shutdown()): its
            // receiver would never see that message, and neither does the host.
            turn.Flush(this);
            DropOpenMessage();
        }
        base.OnGuestPacket(ref packet, ref turn);
    }

    private protected override void OnGuestData(ref VsockPacket packet, ref TxTurn turn, uint length)
    {
        var flags = packet.Header.Flags;
        var end = (flags & VsockSeqFlags.Eom) != 0;
        if (length == 0 && !end)
            return;
        if (Has(StreamStatus.GuestSendShut) || !Credit.PeerMaySend(length))
        {
            Host.Log.Warning(LogTopic.CreditViolation,
                $"{Key}: guest sent {length} bytes beyond its credit or after SHUTDOWN; resetting");
            Reset();
            return;
        }
        Credit.OnReceived(length);
        if (Credit.ShouldSendCreditUpdate)
        {
            // Bytes of an open message are not written as they come (a stream's are), so the guest's view of our
            // free space can run low with no write to look at it: messages written earlier freed room it must hear of.
            PendingOps |= RxOps.CreditUpdate;
            Schedule();
        }
        var eor = (flags & VsockSeqFlags.Eor) != 0;
        // Straight from guest memory while nothing of this message or before it waits in the TX buffer.
        if (_open == 0 && _messages.Count == 0 && Has(StreamStatus.HostWritable))
        {
            if (length == 0 || turn.Gather(this, ref packet))
            {
                _gathered += length;
                if (end)
                {
                    _gatheredEnd = true;
                    _gatheredEor = eor;
                    turn.Flush(this); // the message is whole: send it now (SendGathered), before the next one
                    if (_gathered == 0 && _gatheredEnd)
                        EndGatheredMessage(); // an empty last packet after nothing gathered
                }
                return;
            }
        }
        // Through the TX buffer: what was gathered of this message goes first.
        if (_gathered > 0)
            turn.Flush(this);
        if (Resetting || Has(StreamStatus.Finished))
            return;
        if (!CopyToTxBuffer(ref packet, length))
            return;
        _open += length;
        if (end)
            CompleteOpenMessage(eor);
    }

    private bool CopyToTxBuffer(ref VsockPacket packet, uint length)
    {
        var tx = TxBuffer;
        if (length > tx.Free)
        {
            // Cannot happen while we enforce credit: what is buffered is bounded by the buffer we advertise.
            Host.Log.Warning(LogTopic.CreditViolation, $"{Key}: TX buffer overflow ({length} bytes, {tx.Free} free); resetting");
            Reset();
            return false;
        }
        if (length == 0)
            return true;
        tx.GetWritable(out var first, out var second);
        var n = packet.CopyDataTo(first[..(int)Math.Min(length, (uint)first.Length)]);
        if (n < length)
            packet.CopyDataTo(second, (uint)n);
        tx.Commit((int)length);
        return true;
    }

    /// <summary>
    /// Gathered payloads of the guest's open message (still in guest memory), handed back by the TX turn: sent as
    /// one message when they are all of it, else copied into the TX buffer behind what is there.
    /// </summary>
    [SkipLocalsInit]
    private protected override unsafe void SendGathered(ReadOnlySpan<IoVec> segments)
    {
        if (Has(StreamStatus.Finished) || Resetting || Socket is null)
            return;
        ulong total = 0;
        foreach (var segment in segments)
            total += segment.Length;
        var whole = _gatheredEnd && total == _gathered && _open == 0 && _messages.Count == 0;
        if (whole && Has(StreamStatus.HostWritable) && MaySendNow())
        {
            int n;
            fixed (IoVec* iov = segments)
                n = MessageIo.Send(Socket, iov, segments.Length, _gatheredEor);
            if (n >= 0)
            {
                _gathered = 0;
                _gatheredEnd = false;
                OnWritten(n);
                return;
            }
            if (!OnSendRefused(n))
                return;
        }
        // Keep it: copied behind the open message (the only copy on this path).
        foreach (var segment in segments)
        {
            if (!TxBuffer.TryWrite(new ReadOnlySpan<byte>(segment.Base, (int)segment.Length)))
            {
                Host.Log.Warning(LogTopic.CreditViolation, $"{Key}: TX buffer overflow; resetting");
                Reset();
                return;
            }
        }
        _open += (uint)total;
        _gathered -= (uint)total;
        if (_gatheredEnd && _gathered == 0)
            EndGatheredMessage();
    }

    /// <summary>The gathered message's last bytes reached the TX buffer: it is whole there now.</summary>
    private void EndGatheredMessage()
    {
        _gatheredEnd = false;
        CompleteOpenMessage(_gatheredEor);
    }

    private void CompleteOpenMessage(bool eor)
    {
        _messages.Enqueue(new TxMessage(_open, eor));
        _open = 0;
        FlushTxBuffer();
    }

    /// <summary>Writes whole messages from the TX buffer while the socket takes them.</summary>
    [SkipLocalsInit]
    private protected override unsafe void FlushTxBuffer()
    {
        var iov = stackalloc IoVec[2];
        var tx = TxBuffer;
        while (_messages.TryPeek(out var message) && Has(StreamStatus.HostWritable) && !Has(StreamStatus.Finished) && !Resetting)
        {
            if (!MaySendNow())
                return;
            tx.GetReadable(out var first, out var second);
            var length = (int)message.Length;
            var a = Math.Min(length, first.Length);
            int n;
            fixed (byte* pa = first, pb = second)
            {
                iov[0] = new IoVec { Base = pa, Length = (nuint)a };
                iov[1] = new IoVec { Base = pb, Length = (nuint)(length - a) };
                n = MessageIo.Send(Socket!, iov, length > a ? 2 : 1, message.EndOfRecord);
            }
            if (n < 0)
            {
                OnSendRefused(n);
                return;
            }
            _messages.Dequeue();
            tx.Advance(length);
            OnWritten(length);
        }
        if (_messages.Count == 0 && _open == 0 && _gathered == 0)
            ApplyGuestShutdown();
    }

    /// <summary>
    /// A host AF_VSOCK socket must have credit for at least one byte before a message goes: Linux's non-blocking
    /// SEQPACKET send of a message larger than the peer's credit puts part of it on the wire and then answers
    /// EAGAIN (af_vsock.c, vsock_connectible_sendmsg), which could not be taken back. With no credit at all it
    /// sends nothing; see <see cref="OnSendRefused"/> for the rest.
    /// </summary>
    private bool MaySendNow()
    {
        if (_family == HostSocketFamily.Unix || MessageIo.Writable(Socket!))
            return true;
        Clear(StreamStatus.HostWritable); // the peer's credit update brings an EPOLLOUT edge
        return false;
    }

    /// <summary>A send failed; true if the message should be kept for later (EAGAIN on a unix socket).</summary>
    private bool OnSendRefused(int result)
    {
        if (result == MessageIo.WouldBlock && _family == HostSocketFamily.Unix)
        {
            Clear(StreamStatus.HostWritable); // nothing was sent; the EPOLLOUT edge comes when room frees up
            Host.Counters.HostSocketFull++;
            return true;
        }
        var why = result == MessageIo.WouldBlock
            ? "the host AF_VSOCK peer's credit ran out in the middle of a message (Linux sent part of it and cannot take it back)"
            : result == -Errno.EMSGSIZE
                ? "the host socket refuses a message that large (EMSGSIZE)"
                : $"host socket write failed: {StreamIo.Describe(result)}";
        Host.Log.Warning(LogTopic.StreamProtocol, $"{Key}: {why}; resetting");
        Reset();
        return false;
    }

    /// <summary>The guest's open message will never end: its bytes leave the TX buffer, counted as consumed.</summary>
    private void DropOpenMessage()
    {
        var dropped = _open;
        if (dropped > 0)
            TxBuffer.DropLast((int)dropped);
        _open = 0;
        _gathered = 0;
        _gatheredEnd = false;
        if (dropped > 0)
        {
            Credit.OnConsumed(dropped);
            Host.Log.Debug($"{Key}: the guest shut down in the middle of a {dropped}-byte message; dropped it");
        }
    }

    /// <summary>
    /// <c>OK &lt;guest port&gt;\n</c> as one message, ahead of any guest message and not counted as guest bytes; a
    /// socket that refuses it (it is new, so it hardly can) keeps it in the TX buffer as a message.
    /// </summary>
    [SkipLocalsInit]
    private protected override void WriteOkLine()
    {
        Span<byte> line = stackalloc byte[24];
        var length = Encoding.ASCII.GetBytes($"OK {Key.GuestPort}\n", line);
        var n = MessageIo.Send(Socket!, line[..length]);
        if (n >= 0)
            return;
        if (n != MessageIo.WouldBlock)
        {
            Host.Log.Debug($"{Key}: writing the OK message failed: {StreamIo.Describe(n)}; resetting");
            Reset();
            return;
        }
        TxBuffer.TryWrite(line[..length]);
        AddUncounted(length);
        _messages.Enqueue(new TxMessage((uint)length, false));
        Clear(StreamStatus.HostWritable);
    }

    protected override void OnFinished()
    {
        base.OnFinished();
        _messages.Clear();
        _open = 0;
        _gathered = 0;
        _gatheredEnd = false;
        _next = -1;
        ReturnSpill();
    }
}
