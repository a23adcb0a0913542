using System.Buffers;
using System.Net.Sockets;
using System.Text;
using Akka.Actor;
using Akka.Event;
using Vsock.Actors.Dispatch;
using Vsock.Device.Connections;
using Vsock.Device.Interop;
using Vsock.Device.Threading;
using Vsock.Device.Packets;
using static Vsock.Actors.Protocol.DeviceProtocol;

namespace Vsock.Actors.Connections;

/// <summary>
/// One stream between the guest and a host socket (the reference's VsockConnection): holds the
/// credit state, the TX buffer (guest data waiting for the host socket) and the host socket itself,
/// and builds every packet of this stream for the guest (its RX ops).
///
/// Life cycle, as <c>Become</c> states:
/// host-initiated: <see cref="AwaitingConnectLine"/> → <see cref="AwaitingKey"/> → <see cref="AwaitingResponse"/> → <see cref="Established"/>;
/// guest-initiated: <see cref="ConnectingToHost"/> → <see cref="Established"/>.
/// The actor owns its socket and is stopped, never restarted; <see cref="PostStop"/> releases the
/// socket and every pooled buffer whatever the state. It ends the stream toward the guest with an RST
/// itself; if it dies without doing so, the device sends the RST (see DeviceActor).
///
/// Socket I/O is readiness-based: the socket is registered (edge-triggered) with the VM's event loop,
/// which is also the thread this actor runs on; an edge becomes one <see cref="SocketReady"/> message,
/// and the actor reads or writes with non-blocking calls until EAGAIN (or until credit or the TX
/// buffer says stop, keeping the readiness it has not used up). No thread other than the loop's is
/// involved in moving a byte.
/// </summary>
public sealed class ConnectionActor : UntypedActor
{
    private const int ReadChunk = (int)VsockConstants.MaxPacketPayload;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly IActorRef _device;
    private readonly ConnectionOptions _options;
    private Socket? _socketOrNull;
    private Socket _socket => _socketOrNull!;
    private readonly TxBuffer _tx;
    private readonly EventLoop _loop;
    private readonly ReadinessSignal _readiness;
    private LoopRegistration _registration;
    /// <summary>The socket may have data (or EOF) to read: set by an edge, cleared by EAGAIN.</summary>
    private bool _readable;
    /// <summary>The socket may take more bytes: set by an edge, cleared by EAGAIN.</summary>
    private bool _writable;
    /// <summary>The loop reported the peer's end of the stream (EPOLLRDHUP/HUP): read until EOF, whatever the read sizes.</summary>
    private bool _peerClosing;
    private byte[]? _lineBuffer;
    private CreditState _credit;
    private ConnectionKey _key;
    private ConnectCommandParser? _parser;
    private byte[]? _earlyData;
    private int _earlyDataLength;
    private int _rxInFlight;
    private int _uncountedTxBytes;
    private const uint OkLineRoom = 32;
    private uint _guestShutdown;
    private bool _hostEof;
    private bool _creditRequested;
    private bool _hostWriteShut;
    private bool _finished;
    private bool _flushScheduled;
    private ICancelable? _timer;
    private readonly HostEndpoint? _connectTo;
    private readonly uint? _forwardedGuestPort;

    public ConnectionActor(IActorRef device, ConnectionOptions options, Socket? socket, ConnectionKey key, HostEndpoint? connectTo, VsockHeader request, uint? forwardedGuestPort)
    {
        _request = request;
        _device = device;
        _options = options;
        _socketOrNull = socket;
        _key = key;
        _connectTo = connectTo;
        _forwardedGuestPort = forwardedGuestPort;
        _credit = new CreditState(options.TxBufferSize);
        // Credit bounds guest data to tx-buffer-size; the extra room is for our own "OK <port>\n" line.
        _tx = new TxBuffer(options.TxBufferSize + OkLineRoom);
        _loop = options.Loop ?? throw new ArgumentException("ConnectionOptions.Loop is required", nameof(options));
        _readiness = new ReadinessSignal(Self, SocketReady.Instance);
    }

    /// <summary>A host client accepted on <c>uds-path</c>: it must first send <c>CONNECT &lt;port&gt;\n</c>.</summary>
    public static Props ForHostClient(IActorRef device, ConnectionOptions options, Socket client) =>
        Props.Create(() => new ConnectionActor(device, options, client, default, null, default, null));

    /// <summary>
    /// A connection accepted on a <c>forward-listen</c> AF_VSOCK port: forwarded to the same port of the
    /// guest at once (no CONNECT line, no OK line).
    /// </summary>
    public static Props ForForwardedClient(IActorRef device, ConnectionOptions options, Socket client, uint guestPort) =>
        Props.Create(() => new ConnectionActor(device, options, client, default, null, default, guestPort));

    /// <summary>A guest REQUEST to the host: connect to <paramref name="endpoint"/>, then answer RESPONSE or RST.</summary>
    public static Props ForGuestRequest(IActorRef device, ConnectionOptions options, ConnectionKey key, VsockHeader request, HostEndpoint endpoint) =>
        Props.Create(() => new ConnectionActor(device, options, null, key, endpoint, request, null));

    // Internal signals: payload-free singletons (Akka.IO style).
    private sealed class SocketReady : IDeadLetterSuppression, INoSerializationVerificationNeeded
    {
        public static readonly SocketReady Instance = new();
    }

    /// <summary>Write what the guest sent: queued behind the rest of the device's TX batch, so it goes out as one gathered write.</summary>
    private sealed class FlushTx : IDeadLetterSuppression, INoSerializationVerificationNeeded
    {
        public static readonly FlushTx Instance = new();
    }

    private sealed class Timeout : IDeadLetterSuppression, INoSerializationVerificationNeeded
    {
        public static readonly Timeout Instance = new();
    }

    /// <summary>The outcome of a connect to the host: a socket, or why there is none.</summary>
    private sealed record ConnectResult(Socket? Socket, string? Error) : IDeadLetterSuppression, INoSerializationVerificationNeeded;

    protected override void PreStart()
    {
        if (_forwardedGuestPort is { } guestPort)
        {
            WatchSocket();
            _device.Tell(new OpenToGuest(guestPort));
            Become(AwaitingKey);
        }
        else if (_connectTo is null)
        {
            _parser = new ConnectCommandParser();
            _lineBuffer = new byte[ConnectCommandParser.MaxLineLength * 2];
            _timer = Context.System.Scheduler.ScheduleTellOnceCancelable(_options.ConnectLineTimeout, Self, Timeout.Instance, Self);
            Become(AwaitingConnectLine);
            WatchSocket();
            ReadConnectLine();
        }
        else
        {
            Become(ConnectingToHost);
            StartConnect();
        }
    }

    protected override void OnReceive(object message) => Unhandled(message);

    /// <summary>
    /// Registers the socket with the loop for both directions, edge-triggered, for the rest of its life.
    /// Both directions start out "maybe ready": the first call finds out (EAGAIN at worst).
    /// </summary>
    private void WatchSocket()
    {
        _readable = true;
        _writable = true;
        _registration = _loop.Add((int)_socket.SafeHandle.DangerousGetHandle(),
            EpollEvents.In | EpollEvents.Out | EpollEvents.RdHup | EpollEvents.EdgeTriggered, _readiness);
    }

    /// <summary>Records what the loop reported; the state decides what to do with it.</summary>
    private void OnSocketReady()
    {
        var events = _readiness.Take();
        if ((events & (EpollEvents.In | EpollEvents.RdHup | EpollEvents.Hup | EpollEvents.Err)) != 0)
            _readable = true;
        if ((events & (EpollEvents.RdHup | EpollEvents.Hup | EpollEvents.Err)) != 0)
            _peerClosing = true;
        if ((events & (EpollEvents.Out | EpollEvents.Hup | EpollEvents.Err)) != 0)
            _writable = true;
    }

    /// <summary>
    /// Every state handles a <see cref="FromGuest"/> completely within its turn (the payload array moves
    /// to the TX buffer or back to the pool), so the message object goes back to its pool here.
    /// </summary>
    protected override bool AroundReceive(Receive receive, object message)
    {
        var handled = base.AroundReceive(receive, message);
        if (message is FromGuest fromGuest)
            fromGuest.Recycle();
        return handled;
    }

    // ---------------------------------------------------------------- host-initiated

    private void AwaitingConnectLine(object message)
    {
        switch (message)
        {
            case SocketReady:
                OnSocketReady();
                ReadConnectLine();
                break;
            case Timeout:
                _log.Info("host client sent no CONNECT line within {0}; closing it", _options.ConnectLineTimeout);
                Context.Stop(Self);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    /// <summary>Reads and parses the CONNECT line while the socket has bytes; stops at the line's end.</summary>
    private void ReadConnectLine()
    {
        while (_readable && _parser is not null)
        {
            var n = StreamIo.Receive(_socket.SafeHandle, _lineBuffer);
            if (n == StreamIo.WouldBlock)
            {
                _readable = false;
                return;
            }
            if (n < 0)
            {
                _log.Debug("host client failed before CONNECT: {0}", StreamIo.Describe(n));
                Context.Stop(Self);
                return;
            }
            if (!OnConnectLineBytes(n))
                return;
        }
    }

    /// <returns>True if more of the line is needed.</returns>
    private bool OnConnectLineBytes(int n)
    {
        var buffer = _lineBuffer!;
        ConnectCommandParser.Status status;
        uint port;
        string? error;
        var consumed = 0;
        if (n == 0)
        {
            // The client shut its write side: a complete line without '\n' still counts.
            status = _parser!.FeedEndOfStream(out port, out error);
            _hostEof = status == ConnectCommandParser.Status.Complete;
        }
        else
        {
            status = _parser!.Feed(buffer.AsSpan(0, n), out consumed, out port, out error);
        }
        switch (status)
        {
            case ConnectCommandParser.Status.NeedMore:
                return !_hostEof && n > 0;
            case ConnectCommandParser.Status.Invalid:
                _log.Warning("closing host client: {0}", error);
                _parser = null;
                Context.Stop(Self);
                return false;
        }
        if (n > consumed)
        {
            // Bytes after the newline are stream data: they reach the guest once the stream is up.
            _earlyDataLength = n - consumed;
            _earlyData = ArrayPool<byte>.Shared.Rent(_earlyDataLength);
            buffer.AsSpan(consumed, _earlyDataLength).CopyTo(_earlyData);
        }
        _parser = null;
        _lineBuffer = null;
        _credit.UpdatePeer(0, 0);
        _device.Tell(new OpenToGuest(port));
        Become(AwaitingKey);
        return false;
    }

    private void AwaitingKey(object message)
    {
        switch (message)
        {
            case OpenedToGuest opened:
                _key = opened.Key;
                _timer?.Cancel();
                _timer = Context.System.Scheduler.ScheduleTellOnceCancelable(_options.GuestResponseTimeout, Self, Timeout.Instance, Self);
                SendControl(VsockOp.Request);
                Become(AwaitingResponse);
                break;
            case OpenRefused refused:
                _log.Info("host CONNECT refused: {0}", refused.Reason);
                Context.Stop(Self);
                break;
            case Timeout:
                break; // the CONNECT-line timer; a new one starts with the key
            case SocketReady:
                OnSocketReady(); // remembered until the stream is up
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void AwaitingResponse(object message)
    {
        switch (message)
        {
            case FromGuest { Header.Op: VsockOp.Response } response:
                _timer?.Cancel();
                _credit.UpdatePeer(response.Header.BufAlloc, response.Header.FwdCnt);
                if (_forwardedGuestPort is null)
                    WriteOkLine(); // unix clients speak CONNECT/OK; forwarded AF_VSOCK clients do not
                Become(Established);
                if (_earlyData is { } early)
                {
                    _earlyData = null;
                    SendData(early, _earlyDataLength);
                }
                if (_hostEof)
                    SendControl(VsockOp.Shutdown, VsockShutdownFlags.Send);
                TryRead();
                break;
            case FromGuest { Header.Op: VsockOp.Rst }:
                _log.Debug("guest refused {0}: nothing listens on port {1}", _key, _key.GuestPort);
                Finish(sendRst: false);
                break;
            case FromGuest other:
                ReturnData(other);
                _log.Warning("{0}: unexpected {1} while waiting for RESPONSE; resetting", _key, other.Header);
                Finish(sendRst: true);
                break;
            case Timeout:
                _log.Warning("{0}: guest did not answer REQUEST within {1}; closing host client", _key, _options.GuestResponseTimeout);
                Finish(sendRst: true);
                break;
            case SocketReady:
                OnSocketReady();
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    /// <summary>
    /// Tells the host client the stream is up: <c>OK &lt;guest port&gt;\n</c>, the reference's exact text.
    /// It goes through the same asynchronous send path as stream data (a socket in async use cannot
    /// take a blocking write), ahead of any guest data, and is not counted as forwarded guest bytes.
    /// </summary>
    private void WriteOkLine()
    {
        var text = Encoding.ASCII.GetBytes($"OK {_key.GuestPort}\n");
        var line = ArrayPool<byte>.Shared.Rent(text.Length);
        text.CopyTo(line, 0);
        _tx.TryPush(line, 0, text.Length); // the buffer keeps room for this line beyond the credit
        _uncountedTxBytes = text.Length;
        TryWrite();
    }

    // ---------------------------------------------------------------- guest-initiated

    private readonly VsockHeader _request;

    /// <summary>
    /// A non-blocking connect (the reference blocks its event loop here); the result comes back as a
    /// message. Connects are rare next to data, so they use the runtime's async connect.
    /// </summary>
    private void StartConnect()
    {
        _credit.UpdatePeer(_request.BufAlloc, _request.FwdCnt);
        _connectTo!.ConnectAsync().ContinueWith(
            t => t.IsCompletedSuccessfully
                ? new ConnectResult(t.Result, null)
                : new ConnectResult(null, t.Exception?.InnerException?.Message ?? "cancelled"),
            TaskContinuationOptions.ExecuteSynchronously).PipeTo(Self);
    }

    private void ConnectingToHost(object message)
    {
        switch (message)
        {
            case ConnectResult { Socket: not null } connected:
                _socketOrNull = connected.Socket;
                if (_finished)
                    return;
                WatchSocket();
                SendControl(VsockOp.Response);
                Become(Established);
                TryRead();
                break;
            case ConnectResult failed:
                _log.Debug("{0}: connect to {1} failed ({2}); resetting the guest's REQUEST", _key, _connectTo, failed.Error);
                Finish(sendRst: !_finished);
                break;
            case FromGuest { Header.Op: VsockOp.Rst }:
                Finish(sendRst: false);
                break;
            case FromGuest { Header.Op: VsockOp.CreditUpdate or VsockOp.CreditRequest } g:
                _credit.UpdatePeer(g.Header.BufAlloc, g.Header.FwdCnt);
                break;
            case FromGuest other:
                ReturnData(other);
                _log.Warning("{0}: unexpected {1} before RESPONSE; resetting", _key, other.Header);
                Finish(sendRst: true);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    // ---------------------------------------------------------------- established

    private void Established(object message)
    {
        switch (message)
        {
            case FromGuest packet:
                OnGuestPacket(packet);
                break;
            case SocketReady:
                OnSocketReady();
                TryWrite();
                TryRead();
                break;
            case RxDelivered:
                _rxInFlight--;
                TryRead();
                break;
            case FlushTx:
                _flushScheduled = false;
                TryWrite();
                break;
            case Timeout:
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void OnGuestPacket(FromGuest packet)
    {
        var h = packet.Header;
        _credit.UpdatePeer(h.BufAlloc, h.FwdCnt);
        _creditRequested = false;
        switch (h.Op)
        {
            case VsockOp.Rw:
                if (packet.Data is null || h.Len == 0)
                    break;
                if ((_guestShutdown & VsockShutdownFlags.Send) != 0 || !_credit.GuestMaySend(h.Len))
                {
                    ReturnData(packet);
                    _log.Warning("{0}: guest sent {1} bytes beyond its credit or after SHUTDOWN; resetting", _key, h.Len);
                    Finish(sendRst: true);
                    return;
                }
                _credit.OnReceivedFromGuest(h.Len);
                _tx.TryPush(packet.Data, 0, (int)h.Len); // fits: credit bounds the buffer
                if (!_flushScheduled)
                {
                    // The packets of one TX drain are all in our mailbox already: write them together.
                    _flushScheduled = true;
                    Self.Tell(FlushTx.Instance);
                }
                break;
            case VsockOp.CreditRequest:
                SendControl(VsockOp.CreditUpdate);
                break;
            case VsockOp.CreditUpdate:
                break;
            case VsockOp.Shutdown:
                _guestShutdown |= h.Flags & VsockShutdownFlags.Both;
                ApplyGuestShutdown();
                if (_finished)
                    return;
                break;
            case VsockOp.Rst:
                Finish(sendRst: false);
                return;
            default:
                ReturnData(packet);
                _log.Debug("{0}: ignoring {1}", _key, h);
                break;
        }
        TryRead();
    }

    /// <summary>
    /// SHUTDOWN flags are sticky. SEND: once the TX buffer is flushed, shut the host socket's write
    /// side (half-close, which the reference does not do). Both: the guest closed; flush, then RST and close.
    /// </summary>
    private void ApplyGuestShutdown()
    {
        if (!_tx.IsEmpty)
            return; // re-evaluated when the buffer drains
        if (_guestShutdown == VsockShutdownFlags.Both)
        {
            Finish(sendRst: true);
            return;
        }
        if ((_guestShutdown & VsockShutdownFlags.Send) != 0 && !_hostWriteShut)
        {
            _hostWriteShut = true;
            try
            {
                _socket.Shutdown(SocketShutdown.Send);
            }
            catch (SocketException e)
            {
                _log.Debug("{0}: shutdown(SHUT_WR) failed: {1}", _key, e.SocketErrorCode);
            }
        }
    }

    [ThreadStatic]
    private static ArraySegment<byte>[]? t_segments;

    /// <summary>Writes the TX buffer to the host socket, several segments per call, while it takes bytes.</summary>
    private void TryWrite()
    {
        // Scratch for this call only; per thread, so idle connections carry none of it.
        var segments = t_segments ??= new ArraySegment<byte>[StreamIo.MaxSegments];
        while (_writable && !_tx.IsEmpty && !_finished)
        {
            var count = _tx.PeekSegments(segments);
            var n = StreamIo.Send(_socket.SafeHandle, segments.AsSpan(0, count));
            if (n == StreamIo.WouldBlock)
            {
                _writable = false; // the next EPOLLOUT edge says when there is room again
                return;
            }
            if (n <= 0)
            {
                _log.Debug("{0}: host socket write failed: {1}; resetting", _key, StreamIo.Describe(n));
                Finish(sendRst: true);
                return;
            }
            var asked = 0;
            for (var i = 0; i < count; i++)
                asked += segments[i].Count;
            if (n < asked)
                _writable = false; // the socket buffer is full: its EPOLLOUT edge comes when room frees up
            OnWritten(n);
        }
    }

    /// <summary>Accounts bytes the host socket took: frees TX buffer space and tells the guest when worth it.</summary>
    private void OnWritten(int n)
    {
        _tx.Advance(n);
        var control = Math.Min(n, _uncountedTxBytes);
        _uncountedTxBytes -= control;
        if (n > control)
            _credit.OnForwarded((uint)(n - control));
        if (_credit.ShouldSendCreditUpdate)
            SendControl(VsockOp.CreditUpdate);
        if (_tx.IsEmpty)
            ApplyGuestShutdown();
    }

    /// <summary>
    /// Reads from the host socket while it has data, the guest has credit and fewer than MaxRxInFlight
    /// packets of ours are queued. A buffer is rented only for a read that is about to happen, so an
    /// idle connection holds none (see docs/BENCHMARKS.md, idle memory).
    /// </summary>
    private void TryRead()
    {
        while (_readable)
        {
            if (_finished || _hostEof || (_guestShutdown & VsockShutdownFlags.Receive) != 0)
                return;
            if (_rxInFlight >= _options.MaxRxInFlight)
                return; // RxDelivered resumes
            var credit = _credit.PeerFreeCredit;
            if (credit == 0)
            {
                if (!_creditRequested)
                {
                    _creditRequested = true;
                    SendControl(VsockOp.CreditRequest);
                }
                return; // a packet from the guest (its credit update) resumes
            }
            var size = (int)Math.Min(credit, (uint)ReadChunk);
            var buffer = ArrayPool<byte>.Shared.Rent(size);
            var n = StreamIo.Receive(_socket.SafeHandle, buffer.AsSpan(0, size));
            if (n == StreamIo.WouldBlock)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                _readable = false; // the next EPOLLIN edge says when there is more
                return;
            }
            if (n < 0)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                _log.Debug("{0}: host socket read failed: {1}; resetting", _key, StreamIo.Describe(n));
                Finish(sendRst: true);
                return;
            }
            if (n == 0)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                _hostEof = true;
                // The host will send no more: tell the guest (it reads EOF), but keep the other direction
                // open until the guest closes too (half-close; the reference sends RCV|SEND here).
                SendControl(VsockOp.Shutdown, VsockShutdownFlags.Send);
                return;
            }
            if (n < size && !_peerClosing)
                _readable = false; // drained: data arriving after this read raises a new edge
            SendData(buffer, n);
        }
    }

    // ---------------------------------------------------------------- packets toward the guest

    private VsockHeader Stamp(ushort op, uint len = 0, uint flags = 0)
    {
        _credit.OnAdvertised();
        return new VsockHeader
        {
            SrcCid = _key.LocalCid,
            DstCid = _options.GuestCid,
            SrcPort = _key.LocalPort,
            DstPort = _key.GuestPort,
            Len = len,
            Type = VsockType.Stream,
            Op = op,
            Flags = flags,
            BufAlloc = _credit.BufAlloc,
            FwdCnt = _credit.FwdCnt,
        };
    }

    private void SendControl(ushort op, uint flags = 0) => _device.Tell(ToGuest.Rent(Stamp(op, 0, flags), null, 0));

    private void SendData(byte[] pooled, int length)
    {
        _credit.OnSentToGuest((uint)length);
        _rxInFlight++;
        _device.Tell(ToGuest.Rent(Stamp(VsockOp.Rw, (uint)length), pooled, length));
    }

    private static void ReturnData(FromGuest packet)
    {
        if (packet.Data is not null)
            ArrayPool<byte>.Shared.Return(packet.Data);
    }

    /// <summary>Ends the stream: optionally RST to the guest (which also tells the device the key is free), then stop.</summary>
    private void Finish(bool sendRst)
    {
        if (_finished)
            return;
        _finished = true;
        if (sendRst && _key != default)
            SendControl(VsockOp.Rst);
        Context.Stop(Self);
    }

    protected override void PostStop()
    {
        _timer?.Cancel();
        // Out of the loop before the fd closes: a number epoll still watched could be reused.
        _loop.Remove(_registration);
        try
        {
            _socketOrNull?.Dispose();
        }
        catch (ObjectDisposedException)
        {
        }
        _tx.Clear();
        if (_earlyData is not null)
            ArrayPool<byte>.Shared.Return(_earlyData);
    }
}
