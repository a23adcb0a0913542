using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Vsock.Device.Backend;
using Vsock.Device.Diagnostics;
using Vsock.Device.Interop;
using Vsock.Device.Packets;

namespace Vsock.Device.Connections;

/// <summary>
/// A stream between the guest and a host socket (unix <c>uds-path</c>, <c>uds-path_PORT</c>, or host AF_VSOCK): the
/// reference's VsockConnection. Owns the socket and the <see cref="TxBuffer"/>; its owner (a connection actor)
/// registers the socket with the VM's event loop, passes readiness in (<see cref="OnSocketReady"/>) and disposes the
/// stream when it stops.
///
/// One copy each way. Host → guest: the socket is read only when the guest has RX buffers and credit, straight into
/// those buffers (<see cref="FillRx"/>); until then the data stays in the socket. Guest → host: payloads are written
/// from guest memory in one gathered sendmsg per TX turn; only what the socket refuses is copied into the TX buffer.
///
/// This class is the STREAM type; <see cref="HostSeqpacketStream"/> keeps its set-up, control packets and shutdown
/// and replaces the data path (the <c>private protected virtual</c> members) with whole messages.
/// </summary>
public class HostStream : VsockStream, ITxTarget, IDisposable
{
    private readonly TxBuffer _tx;
    private readonly bool _sendsOkLine;
    private SafeHandle? _socket;
    /// <summary>Bytes at the front of the TX buffer that are ours (the OK line), not guest data: no fwd_cnt for them.</summary>
    private int _uncounted;
    /// <summary>Flags of the pending SHUTDOWN op.</summary>
    private uint _shutdownFlags;

    /// <param name="socket">The host socket, owned by the stream from now on; null for a guest-initiated stream
    /// until its connect completes (<see cref="OnConnected"/>).</param>
    /// <param name="sendsOkLine">A unix host client that spoke <c>CONNECT</c> gets <c>OK &lt;port&gt;\n</c> once the guest accepts.</param>
    public HostStream(IStreamHost host, uint txBufferSize, SafeHandle? socket, bool sendsOkLine)
        : this(host, txBufferSize, socket, sendsOkLine, VsockType.Stream)
    {
    }

    private protected HostStream(IStreamHost host, uint txBufferSize, SafeHandle? socket, bool sendsOkLine, ushort type)
        : base(host, txBufferSize, type)
    {
        _socket = socket;
        _sendsOkLine = sendsOkLine;
        // Credit bounds guest data to tx-buffer-size; the extra room is for our own "OK <port>\n" line.
        _tx = new TxBuffer(txBufferSize + OkLineRoom);
    }

    private const uint OkLineRoom = 32;

    /// <summary>The connection actor that owns the stream; told when set-up ends.</summary>
    public IHostStreamOwner? Owner { get; set; }

    /// <summary>The host socket (null until connected); the owner registers it with the loop.</summary>
    public SafeHandle? Socket => _socket;

    /// <summary>Guest bytes waiting for the host socket.</summary>
    public uint TxBuffered => _tx.Length;

    /// <summary>Whether the TX buffer's storage is rented (it is only once the socket refused something).</summary>
    public bool HoldsTxStorage => _tx.HasStorage;

    /// <summary>When a SHUTDOWN went to the guest (for the owner's close timer); null if none did.</summary>
    public long? ShutdownSentAt { get; private set; }

    private protected TxBuffer TxBuffer => _tx;

    public override bool HasRxWork =>
        !Has(StreamStatus.Finished) &&
        (PendingOps != RxOps.None || (CanRead && (Credit.PeerFreeCredit > 0 || !Has(StreamStatus.CreditRequested))));

    private const StreamStatus ReadingUp = StreamStatus.Established | StreamStatus.HostReadable;
    private const StreamStatus ReadingOver = StreamStatus.HostEof | StreamStatus.GuestReceiveShut | StreamStatus.Finished;

    private protected bool CanRead =>
        _socket is not null && (Status & ReadingUp) == ReadingUp && (Status & ReadingOver) == 0 && !Resetting;

    /// <summary>An RST is owed: nothing else goes either way.</summary>
    private protected bool Resetting => (PendingOps & RxOps.Rst) != 0;

    // ------------------------------------------------------------------ set-up

    /// <summary>Host-initiated (after the CONNECT line) or forwarded: the stream gets its key and owes the guest a REQUEST.</summary>
    public void OpenToGuest(ConnectionKey key)
    {
        Open(key);
        Credit.UpdatePeer(0, 0); // no credit until the guest's RESPONSE says how much
        PendingOps |= RxOps.Request;
        Schedule();
    }

    /// <summary>Guest-initiated: the guest's REQUEST; the RESPONSE goes out once the host socket is connected.</summary>
    public void AcceptFromGuest(ConnectionKey key, in VsockHeader request)
    {
        Open(key);
        Credit.UpdatePeer(request.BufAlloc, request.FwdCnt);
    }

    /// <summary>The guest-initiated connect succeeded: the stream owns <paramref name="socket"/> and answers RESPONSE.</summary>
    public void OnConnected(SafeHandle socket)
    {
        if (Has(StreamStatus.Finished))
        {
            socket.Dispose(); // the guest gave up meanwhile
            return;
        }
        _socket = socket;
        OnSocketConnected(socket);
        Set(StreamStatus.Established | StreamStatus.HostReadable | StreamStatus.HostWritable);
        Host.Counters.StreamsOpened++;
        PendingOps |= RxOps.Response;
        Schedule();
    }

    /// <summary>The guest-initiated connect handed over the socket, before the RESPONSE (which carries our credit) goes out.</summary>
    private protected virtual void OnSocketConnected(SafeHandle socket)
    {
    }

    /// <summary>The owner's socket is registered: both directions start out "maybe ready", the first call finds out.</summary>
    public void OnRegistered() => Set(StreamStatus.HostReadable | StreamStatus.HostWritable);

    /// <summary>Readiness of the host socket (EPOLL* bits), from the owner.</summary>
    public void OnSocketReady(uint events)
    {
        if (Has(StreamStatus.Finished))
            return;
        if ((events & (EpollEvents.In | EpollEvents.RdHup | EpollEvents.Hup | EpollEvents.Err)) != 0)
            Set(StreamStatus.HostReadable);
        if ((events & (EpollEvents.RdHup | EpollEvents.Hup | EpollEvents.Err)) != 0)
            Set(StreamStatus.HostClosing);
        if ((events & (EpollEvents.Out | EpollEvents.Hup | EpollEvents.Err)) != 0)
        {
            Set(StreamStatus.HostWritable);
            FlushTxBuffer();
        }
        ScheduleIfWork();
    }

    // ------------------------------------------------------------------ toward the guest

    public override RxFill FillRx(ref RxTurn turn, uint quantum)
    {
        if (Has(StreamStatus.Finished))
            return RxFill.Idle;
        if ((PendingOps & RxOps.Rst) != 0)
            return TrySendRst(ref turn) ? RxFill.Idle : RxFill.OutOfBuffers;
        if ((PendingOps & RxOps.Request) != 0)
        {
            if (!TrySend(ref turn, VsockOp.Request))
                return RxFill.OutOfBuffers;
            PendingOps &= ~RxOps.Request;
        }
        if ((PendingOps & RxOps.Response) != 0)
        {
            if (!TrySend(ref turn, VsockOp.Response))
                return RxFill.OutOfBuffers;
            PendingOps &= ~RxOps.Response;
        }

        var data = FillData(ref turn, quantum);
        if (data != RxFill.Idle)
            return data;
        return FillTrailingOps(ref turn);
    }

    /// <summary>
    /// Host data for the guest, read straight into its RX buffers while it has buffers and credit. Idle when the
    /// socket is drained (or over) or the credit is used up; the ops owed after the data are sent next.
    /// </summary>
    // The stream data path; HostSeqpacketStream reads whole messages instead.
    private protected virtual RxFill FillData(ref RxTurn turn, uint quantum)
    {
        uint sent = 0;
        while (CanRead)
        {
            var credit = Credit.PeerFreeCredit;
            if (credit == 0)
            {
                OnCreditShort();
                break;
            }
            if (sent >= quantum)
                return RxFill.More;
            var result = turn.ReadFrom(_socket!, Stamp(VsockOp.Rw), Math.Min(credit, quantum - sent), out var n, out var offered, out var errno);
            switch (result)
            {
                case RxReadResult.Data:
                    Credit.OnSent((uint)n);
                    Credit.OnAdvertised();
                    sent += (uint)n;
                    if (n < offered && !Has(StreamStatus.HostClosing))
                        Clear(StreamStatus.HostReadable); // drained: data arriving after this read raises a new edge
                    if (!TryAskCreditEarly(ref turn))
                        return RxFill.OutOfBuffers;
                    break;
                case RxReadResult.WouldBlock:
                    Clear(StreamStatus.HostReadable);
                    break;
                case RxReadResult.EndOfStream:
                    OnHostEof();
                    break;
                case RxReadResult.NoBuffers:
                    return RxFill.OutOfBuffers;
                default:
                    Host.Log.Debug($"{Key}: host socket read failed: {StreamIo.Describe(errno)}; resetting");
                    return ResetNow(ref turn);
            }
        }
        return RxFill.Idle;
    }

    /// <summary>The host will send no more: tell the guest (it reads EOF) but keep the other direction open until the
    /// guest closes too (half-close; the reference sends SHUTDOWN(RCV|SEND) here).</summary>
    private protected void OnHostEof()
    {
        Set(StreamStatus.HostEof);
        _shutdownFlags |= VsockShutdownFlags.Send;
        PendingOps |= RxOps.Shutdown;
    }

    /// <summary>Ends the stream from inside an RX turn: the RST goes now if the guest has a buffer for it.</summary>
    private protected RxFill ResetNow(ref RxTurn turn)
    {
        PendingOps = RxOps.Rst;
        return TrySendRst(ref turn) ? RxFill.Idle : RxFill.OutOfBuffers;
    }

    /// <summary>The ops that follow the data: CREDIT_REQUEST, CREDIT_UPDATE, SHUTDOWN.</summary>
    private RxFill FillTrailingOps(ref RxTurn turn)
    {
        if ((PendingOps & RxOps.CreditRequest) != 0)
        {
            if (!TrySend(ref turn, VsockOp.CreditRequest))
                return RxFill.OutOfBuffers;
            PendingOps &= ~RxOps.CreditRequest;
            Set(StreamStatus.CreditRequested);
        }
        if ((PendingOps & RxOps.CreditUpdate) != 0)
        {
            // Every packet carries fwd_cnt: if data went out since the update was owed, the guest knows already;
            // but a CREDIT_REQUEST is always answered (the spec requires it; Linux answers one even when idle).
            var news = Credit.FwdCnt != Credit.LastAdvertisedFwdCnt || Has(StreamStatus.CreditUpdateAsked);
            if (news && !TrySend(ref turn, VsockOp.CreditUpdate))
                return RxFill.OutOfBuffers;
            PendingOps &= ~RxOps.CreditUpdate;
            Clear(StreamStatus.CreditUpdateAsked);
        }
        if ((PendingOps & RxOps.Shutdown) != 0)
        {
            if (!TrySend(ref turn, VsockOp.Shutdown, _shutdownFlags))
                return RxFill.OutOfBuffers;
            PendingOps &= ~RxOps.Shutdown;
            ShutdownSentAt ??= Environment.TickCount64;
        }
        return RxFill.Idle;
    }

    /// <summary>
    /// The guest's credit cannot take what the host has for it: ask for news (once until it answers) and count one
    /// stall toward the guest per episode (the guest's next credit news ends it).
    /// </summary>
    private protected void OnCreditShort()
    {
        if (!Has(StreamStatus.CreditRequested))
            PendingOps |= RxOps.CreditRequest;
        if (!Has(StreamStatus.CreditStalled))
        {
            Set(StreamStatus.CreditStalled);
            Host.Counters.CreditStallsTowardGuest++;
        }
    }

    /// <summary>
    /// Asks the guest for its credit (CREDIT_REQUEST) once the window it gave is three quarters used, instead of
    /// waiting until it is empty: a Linux guest returns credit only after consuming three quarters of its buffer
    /// (its free space below 64 KiB of 256), so with a full window the stream would stop for a whole round trip
    /// of its update every window; asked early, the guest answers with what it has consumed so far and the
    /// stream keeps going. One request per window (cleared by the guest's next packet). False if no RX buffer.
    /// </summary>
    private bool TryAskCreditEarly(ref RxTurn turn)
    {
        if (Has(StreamStatus.CreditRequested) || Credit.PeerFreeCredit >= Credit.PeerBufAlloc / 4)
            return true;
        if (!TrySend(ref turn, VsockOp.CreditRequest))
        {
            PendingOps |= RxOps.CreditRequest;
            return false;
        }
        Set(StreamStatus.CreditRequested);
        return true;
    }

    // ------------------------------------------------------------------ from the guest

    public override void OnGuestPacket(ref VsockPacket packet, ref TxTurn turn)
    {
        var h = packet.Header;
        Credit.UpdatePeer(h.BufAlloc, h.FwdCnt);
        Clear(StreamStatus.CreditRequested | StreamStatus.CreditStalled);
        if (Has(StreamStatus.Finished))
            return;
        if (Resetting)
        {
            if (h.Op == VsockOp.Rst)
                Finish(); // the guest closed first: our RST is no longer owed
            return;
        }
        if (!Has(StreamStatus.Established))
        {
            OnGuestPacketBeforeEstablished(h);
            return;
        }
        switch (h.Op)
        {
            case VsockOp.Rw:
                OnGuestData(ref packet, ref turn, h.Len);
                break;
            case VsockOp.CreditRequest:
                PendingOps |= RxOps.CreditUpdate;
                Set(StreamStatus.CreditUpdateAsked);
                break;
            case VsockOp.CreditUpdate:
                break; // recorded above
            case VsockOp.Shutdown:
                turn.Flush(this); // data gathered before the SHUTDOWN goes first
                if ((h.Flags & VsockShutdownFlags.Send) != 0)
                    Set(StreamStatus.GuestSendShut);
                if ((h.Flags & VsockShutdownFlags.Receive) != 0)
                    Set(StreamStatus.GuestReceiveShut);
                ApplyGuestShutdown();
                break;
            case VsockOp.Rst:
                Finish(); // the guest closed: no answer, the host socket is closed by the owner
                return;
            default:
                Host.Log.Debug($"{Key}: ignoring {h}");
                break;
        }
        ScheduleIfWork();
    }

    private void OnGuestPacketBeforeEstablished(in VsockHeader h)
    {
        switch (h.Op)
        {
            case VsockOp.Response when (PendingOps & RxOps.Request) == 0 && _socket is not null:
                Set(StreamStatus.Established);
                Owner?.OnEstablished();
                Host.Counters.StreamsOpened++;
                if (_sendsOkLine)
                    WriteOkLine();
                ScheduleIfWork();
                break;
            case VsockOp.Rst:
                Host.Log.Debug($"{Key}: the guest refused the stream (nothing listens on port {Key.GuestPort})");
                Host.Counters.StreamsRefused++;
                Finish();
                break;
            case VsockOp.CreditUpdate or VsockOp.CreditRequest:
                break; // credit recorded; answered once the stream is up
            default:
                Host.Log.Warning(LogTopic.StreamProtocol, $"{Key}: unexpected {h} before the stream was established; resetting");
                Reset();
                break;
        }
    }

    // The stream data path; HostSeqpacketStream gathers whole messages instead.
    private protected virtual void OnGuestData(ref VsockPacket packet, ref TxTurn turn, uint length)
    {
        if (length == 0)
            return;
        if (Has(StreamStatus.GuestSendShut) || !Credit.PeerMaySend(length))
        {
            Host.Log.Warning(LogTopic.CreditViolation,
                $"{Key}: guest sent {length} bytes beyond its credit or after SHUTDOWN; resetting");
            Reset();
            return;
        }
        Credit.OnReceived(length);
        // Straight from guest memory unless bytes are queued before it (order) or the socket is known full.
        if (_tx.IsEmpty && Has(StreamStatus.HostWritable))
        {
            if (turn.Gather(this, ref packet))
                return;
            // Too fragmented to lend: what this turn gathered goes first, then the copy, written now (a socket
            // that never filled up brings no EPOLLOUT edge to flush it later).
            turn.Flush(this);
            CopyToTxBuffer(ref packet, length);
            FlushTxBuffer();
            return;
        }
        CopyToTxBuffer(ref packet, length);
    }

    private void CopyToTxBuffer(ref VsockPacket packet, uint length)
    {
        if (length > _tx.Free)
        {
            // Cannot happen while we enforce credit: what is buffered is bounded by the buffer we advertise.
            Host.Log.Warning(LogTopic.CreditViolation, $"{Key}: TX buffer overflow ({length} bytes, {_tx.Free} free); resetting");
            Reset();
            return;
        }
        _tx.GetWritable(out var first, out var second);
        var n = packet.CopyDataTo(first[..(int)Math.Min(length, (uint)first.Length)]);
        if (n < length)
            packet.CopyDataTo(second, (uint)n);
        _tx.Commit((int)length);
    }

    void ITxTarget.SendGathered(ReadOnlySpan<IoVec> segments) => SendGathered(segments);

    /// <summary>A gathered write of guest payloads (still in guest memory) from the TX turn.</summary>
    private protected virtual unsafe void SendGathered(ReadOnlySpan<IoVec> segments)
    {
        if (Has(StreamStatus.Finished) || Resetting || _socket is null)
            return;
        var written = 0;
        if (_tx.IsEmpty && Has(StreamStatus.HostWritable))
        {
            fixed (IoVec* iov = segments)
                written = StreamIo.SendVector(_socket, iov, segments.Length);
            if (written == StreamIo.WouldBlock)
            {
                written = 0;
                Clear(StreamStatus.HostWritable);
            }
            else if (written < 0)
            {
                Host.Log.Debug($"{Key}: host socket write failed: {StreamIo.Describe(written)}; resetting");
                Reset();
                return;
            }
        }
        // What the socket refused waits in the TX buffer (the only copy on this path).
        var skip = (uint)written;
        var refused = false;
        foreach (var segment in segments)
        {
            var length = (uint)segment.Length;
            if (skip >= length)
            {
                skip -= length;
                continue;
            }
            refused = true;
            if (!_tx.TryWrite(new ReadOnlySpan<byte>((byte*)segment.Base + skip, (int)(length - skip))))
            {
                Host.Log.Warning(LogTopic.CreditViolation, $"{Key}: TX buffer overflow; resetting");
                Reset();
                return;
            }
            skip = 0;
        }
        if (refused)
        {
            Clear(StreamStatus.HostWritable); // the socket is full: its EPOLLOUT edge comes when room frees up
            Host.Counters.HostSocketFull++;
        }
        if (written > 0)
            OnWritten(written);
    }

    /// <summary>Writes the TX buffer to the host socket while it takes bytes.</summary>
    // Scratch on the stack is written before it is read: no zeroing on the data path.
    [SkipLocalsInit]
    private protected virtual unsafe void FlushTxBuffer()
    {
        var iov = stackalloc IoVec[2];
        while (!_tx.IsEmpty && Has(StreamStatus.HostWritable) && !Has(StreamStatus.Finished))
        {
            _tx.GetReadable(out var first, out var second);
            int n;
            fixed (byte* a = first, b = second)
            {
                iov[0] = new IoVec { Base = a, Length = (nuint)first.Length };
                iov[1] = new IoVec { Base = b, Length = (nuint)second.Length };
                n = StreamIo.SendVector(_socket!, iov, second.IsEmpty ? 1 : 2);
            }
            if (n == StreamIo.WouldBlock)
            {
                Clear(StreamStatus.HostWritable);
                return;
            }
            if (n < 0)
            {
                Host.Log.Debug($"{Key}: host socket write failed: {StreamIo.Describe(n)}; resetting");
                Reset();
                return;
            }
            var asked = first.Length + second.Length;
            _tx.Advance(n);
            OnWritten(n);
            if (n < asked)
            {
                Clear(StreamStatus.HostWritable);
                return;
            }
        }
        if (_tx.IsEmpty)
            ApplyGuestShutdown();
    }

    /// <summary>Accounts bytes the host socket took: the guest learns (fwd_cnt) when worth a packet.</summary>
    private protected void OnWritten(int n)
    {
        var ours = Math.Min(n, _uncounted);
        _uncounted -= ours;
        if (n > ours)
            Credit.OnConsumed((uint)(n - ours));
        if (Credit.ShouldSendCreditUpdate)
        {
            PendingOps |= RxOps.CreditUpdate;
            Schedule();
        }
    }

    /// <summary>
    /// SHUTDOWN flags are sticky. SEND: once the TX buffer is drained, shut the host socket's write side
    /// (half-close, which the reference does not do). Both: the guest closed; drain, then RST and close.
    /// </summary>
    private protected void ApplyGuestShutdown()
    {
        if (!_tx.IsEmpty || Has(StreamStatus.Finished))
            return;
        if ((Status & (StreamStatus.GuestSendShut | StreamStatus.GuestReceiveShut)) == (StreamStatus.GuestSendShut | StreamStatus.GuestReceiveShut))
        {
            Reset();
            return;
        }
        if (Has(StreamStatus.GuestSendShut) && !Has(StreamStatus.HostWriteShut) && _socket is not null)
        {
            Set(StreamStatus.HostWriteShut);
            var result = StreamIo.ShutdownWrite(_socket);
            if (result < 0)
                Host.Log.Debug($"{Key}: shutdown(SHUT_WR) failed: {StreamIo.Describe(result)}");
        }
    }

    /// <summary>
    /// Tells the host client the stream is up: <c>OK &lt;guest port&gt;\n</c>, the reference's exact text, ahead of
    /// any guest data and not counted as forwarded guest bytes. A fresh socket takes it at once; what it does not
    /// take waits in the TX buffer.
    /// </summary>
    // Scratch on the stack is written before it is read: no zeroing on the data path.
    [SkipLocalsInit]
    private protected virtual void WriteOkLine()
    {
        Span<byte> line = stackalloc byte[24];
        var length = Encoding.ASCII.GetBytes($"OK {Key.GuestPort}\n", line);
        var written = StreamIo.Send(_socket!, line[..length]);
        if (written == StreamIo.WouldBlock)
            written = 0;
        if (written < 0)
        {
            Host.Log.Debug($"{Key}: writing the OK line failed: {StreamIo.Describe(written)}; resetting");
            Reset();
            return;
        }
        if (written < length)
        {
            _tx.TryWrite(line[written..length]);
            _uncounted += length - written;
            Clear(StreamStatus.HostWritable);
        }
    }

    /// <summary>Counts bytes put in the TX buffer that are ours (the OK line), not guest data: no fwd_cnt for them.</summary>
    private protected void AddUncounted(int bytes) => _uncounted += bytes;

    protected override void OnFinished() => _tx.Clear();

    /// <summary>
    /// The owner stopped: closes the socket and returns the TX buffer. The device learns from the owner's
    /// termination, and resets the guest's stream if it was not over.
    /// </summary>
    public void Dispose()
    {
        Abandon();
        _tx.Dispose();
        _socket?.Dispose();
    }
}
