using System.Buffers;
using System.Net.Sockets;
using System.Text;
using Akka.Actor;
using Akka.Event;
using Vsock.Device.Connections;
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
    private readonly SocketOperation _receive;
    private readonly SocketOperation _send;
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
        _receive = new SocketOperation(Self, ReceiveCompleted.Instance);
        _send = new SocketOperation(Self, SendCompleted.Instance);
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
    private sealed class ReceiveCompleted : IDeadLetterSuppression, INoSerializationVerificationNeeded
    {
        public static readonly ReceiveCompleted Instance = new();
    }

    private sealed class SendCompleted : IDeadLetterSuppression, INoSerializationVerificationNeeded
    {
        public static readonly SendCompleted Instance = new();
    }

    private sealed class Timeout : IDeadLetterSuppression, INoSerializationVerificationNeeded
    {
        public static readonly Timeout Instance = new();
    }

    private sealed record ConnectResult(Socket? Socket, SocketError Error) : IDeadLetterSuppression, INoSerializationVerificationNeeded;

    protected override void PreStart()
    {
        if (_forwardedGuestPort is { } guestPort)
        {
            _device.Tell(new OpenToGuest(guestPort));
            Become(AwaitingKey);
        }
        else if (_connectTo is null)
        {
            _parser = new ConnectCommandParser();
            _timer = Context.System.Scheduler.ScheduleTellOnceCancelable(_options.ConnectLineTimeout, Self, Timeout.Instance, Self);
            Become(AwaitingConnectLine);
            StartReceive(new byte[ConnectCommandParser.MaxLineLength * 2]);
        }
        else
        {
            Become(ConnectingToHost);
            StartConnect();
        }
    }

    protected override void OnReceive(object message) => Unhandled(message);

    // ---------------------------------------------------------------- host-initiated

    private void AwaitingConnectLine(object message)
    {
        switch (message)
        {
            case ReceiveCompleted:
                _receive.Complete();
                OnConnectLineBytes();
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

    private void OnConnectLineBytes()
    {
        var buffer = _receive.Buffer!;
        if (_receive.Error != SocketError.Success)
        {
            _log.Debug("host client failed before CONNECT: {0}", _receive.Error);
            Context.Stop(Self);
            return;
        }
        var n = _receive.BytesTransferred;
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
                StartReceive(buffer);
                return;
            case ConnectCommandParser.Status.Invalid:
                _log.Warning("closing host client: {0}", error);
                Context.Stop(Self);
                return;
        }
        if (n > consumed)
        {
            // Bytes after the newline are stream data: they reach the guest once the stream is up.
            _earlyDataLength = n - consumed;
            _earlyData = ArrayPool<byte>.Shared.Rent(_earlyDataLength);
            buffer.AsSpan(consumed, _earlyDataLength).CopyTo(_earlyData);
        }
        _receive.ReleaseBuffer();
        _parser = null;
        _credit.UpdatePeer(0, 0);
        _device.Tell(new OpenToGuest(port));
        Become(AwaitingKey);
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
                TryStartReceive();
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
        TryStartSend();
    }

    // ---------------------------------------------------------------- guest-initiated

    private readonly VsockHeader _request;

    /// <summary>A non-blocking connect (the reference blocks its event loop here); the result comes back as a message.</summary>
    private void StartConnect()
    {
        _credit.UpdatePeer(_request.BufAlloc, _request.FwdCnt);
        _connectTo!.ConnectAsync().ContinueWith(
            t => t.IsCompletedSuccessfully
                ? new ConnectResult(t.Result, SocketError.Success)
                : new ConnectResult(null, (t.Exception?.InnerException as SocketException)?.SocketErrorCode ?? SocketError.SocketError),
            TaskContinuationOptions.ExecuteSynchronously).PipeTo(Self);
    }

    private void ConnectingToHost(object message)
    {
        switch (message)
        {
            case ConnectResult { Error: SocketError.Success } connected:
                _socketOrNull = connected.Socket;
                if (_finished)
                    return;
                SendControl(VsockOp.Response);
                Become(Established);
                TryStartReceive();
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
            case ReceiveCompleted:
                _receive.Complete();
                OnHostBytes();
                break;
            case SendCompleted:
                _send.Complete();
                OnSendCompleted();
                break;
            case RxDelivered:
                _rxInFlight--;
                TryStartReceive();
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
                TryStartSend();
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
        TryStartReceive();
    }

    /// <summary>
    /// SHUTDOWN flags are sticky. SEND: once the TX buffer is flushed, shut the host socket's write
    /// side (half-close, which the reference does not do). Both: the guest closed; flush, then RST and close.
    /// </summary>
    private void ApplyGuestShutdown()
    {
        if (!_tx.IsEmpty || _send.Pending)
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

    private void TryStartSend()
    {
        if (_send.Pending || _tx.IsEmpty)
            return;
        var next = _tx.Peek();
        _send.StartSend(_socket, next.Array!, next.Offset, next.Count);
    }

    private void OnSendCompleted()
    {
        if (_send.Error != SocketError.Success || _send.BytesTransferred == 0)
        {
            _log.Debug("{0}: host socket write failed: {1}; resetting", _key, _send.Error);
            _send.ReleaseBuffer();
            Finish(sendRst: true);
            return;
        }
        var n = _send.BytesTransferred;
        _send.ReleaseBuffer();
        _tx.Advance(n);
        var control = Math.Min(n, _uncountedTxBytes);
        _uncountedTxBytes -= control;
        if (n > control)
            _credit.OnForwarded((uint)(n - control));
        if (_credit.ShouldSendCreditUpdate)
            SendControl(VsockOp.CreditUpdate);
        if (_tx.IsEmpty)
            ApplyGuestShutdown();
        else
            TryStartSend();
    }

    private void TryStartReceive()
    {
        if (_finished || _receive.Pending || _hostEof || (_guestShutdown & VsockShutdownFlags.Receive) != 0)
            return;
        if (_rxInFlight >= _options.MaxRxInFlight)
            return;
        var credit = _credit.PeerFreeCredit;
        if (credit == 0)
        {
            if (!_creditRequested)
            {
                _creditRequested = true;
                SendControl(VsockOp.CreditRequest);
            }
            return;
        }
        var size = (int)Math.Min(credit, (uint)ReadChunk);
        StartReceive(ArrayPool<byte>.Shared.Rent(size), size);
    }

    private void StartReceive(byte[] buffer, int count = -1) =>
        _receive.StartReceive(_socket, buffer, 0, count < 0 ? buffer.Length : count);

    private void OnHostBytes()
    {
        var buffer = _receive.Buffer!;
        var n = _receive.BytesTransferred;
        var error = _receive.Error;
        _receive.ReleaseBuffer();
        if (error != SocketError.Success)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            _log.Debug("{0}: host socket read failed: {1}; resetting", _key, error);
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
        SendData(buffer, n);
        TryStartReceive();
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

    private void SendControl(ushort op, uint flags = 0) => _device.Tell(new ToGuest(Stamp(op, 0, flags), null, 0));

    private void SendData(byte[] pooled, int length)
    {
        _credit.OnSentToGuest((uint)length);
        _rxInFlight++;
        _device.Tell(new ToGuest(Stamp(VsockOp.Rw, (uint)length), pooled, length));
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
        try
        {
            _socketOrNull?.Dispose();
        }
        catch (ObjectDisposedException)
        {
        }
        // A buffer still lent to a pending socket operation is left to the GC: returning it to the
        // pool while the kernel may still write into it would corrupt another user's data.
        if (!_send.Pending)
            _tx.Clear();
        if (!_receive.Pending)
        {
            _receive.Dispose();
            _send.Dispose();
        }
        if (_earlyData is not null)
            ArrayPool<byte>.Shared.Return(_earlyData);
    }
}
