using Vsock.Device.Interop;
using Vsock.Testing.Packets;

namespace Vsock.Testing;

// af_vsock STREAM and SEQPACKET semantics on top of the driver, following Linux's virtio_transport_common.c.
public sealed partial class SyntheticGuest
{
    private readonly Dictionary<StreamKey, GuestStream> _streams = [];
    private readonly Dictionary<uint, GuestListener> _listeners = [];
    private readonly List<ReceivedPacket> _received = [];
    private readonly AsyncPulse _receivedChanged = new();
    private uint _nextEphemeralPort;

    internal object Sync => _sync;

    /// <summary>
    /// Starts listening on <paramref name="port"/> (any CID, as a Linux listener bound to VMADDR_CID_ANY) with a
    /// socket of <paramref name="kind"/>: a REQUEST of the other type is reset, as Linux does.
    /// </summary>
    public GuestListener Listen(uint port, SocketKind kind = SocketKind.Stream)
    {
        lock (_sync)
        {
            ThrowIfDisposed();
            ThrowIfSeqpacketUnsupported(kind);
            if (_listeners.ContainsKey(port))
                throw new InvalidOperationException($"port {port} already has a listener");
            var listener = new GuestListener(this, port, TypeOf(kind));
            _listeners.Add(port, listener);
            return listener;
        }
    }

    /// <summary>
    /// Connects to <paramref name="cid"/>:<paramref name="port"/> from the next free local port
    /// (from <see cref="SyntheticGuestOptions.FirstEphemeralPort"/> upward): REQUEST, then RESPONSE.
    /// </summary>
    /// <exception cref="GuestConnectionRefusedException">The peer answered RST.</exception>
    /// <exception cref="TimeoutException">No answer within <paramref name="timeout"/> (the attempt is dropped without RST, like Linux).</exception>
    /// <exception cref="NotSupportedException">SEQPACKET without VIRTIO_VSOCK_F_SEQPACKET (Linux: ESOCKTNOSUPPORT).</exception>
    public async Task<GuestStream> ConnectAsync(ulong cid, uint port, TimeSpan timeout, CancellationToken cancellationToken = default,
        SocketKind kind = SocketKind.Stream)
    {
        GuestStream stream;
        lock (_sync)
        {
            ThrowIfDisposed();
            ThrowIfSeqpacketUnsupported(kind);
            stream = new GuestStream(this, AllocateEphemeralPort(), cid, port, connected: false, TypeOf(kind));
            _streams.Add(stream.Key, stream);
            SendControl(StreamHeader(stream, VsockOp.Request, 0, 0));
        }
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            Task wait;
            lock (_sync)
            {
                ThrowIfDisposed();
                switch (stream.State)
                {
                    case StreamState.Connected:
                        return stream;
                    case StreamState.Refused:
                        throw new GuestConnectionRefusedException(cid, port);
                    case StreamState.Failed:
                        throw new IOException($"connection to {cid}:{port} failed: the peer answered REQUEST with {stream.FailureOp}");
                }
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                {
                    RemoveStream(stream);
                    stream.State = StreamState.Failed;
                    throw new TimeoutException($"no answer from {cid}:{port} within {timeout.TotalMilliseconds:0} ms");
                }
                wait = stream.Changed.Wait().WaitAsync(left, cancellationToken);
            }
            try
            {
                await wait.ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Loop once more: the deadline check above turns it into the caller's TimeoutException.
            }
            catch (OperationCanceledException)
            {
                lock (_sync)
                {
                    if (stream.State == StreamState.Connecting)
                    {
                        RemoveStream(stream);
                        stream.State = StreamState.Failed;
                    }
                }
                throw;
            }
        }
    }

    /// <summary>
    /// For benchmarks: listens on <paramref name="port"/> and, inside the driver thread, answers each
    /// REQUEST with RESPONSE and closes the stream at once, as an application that calls accept() and
    /// close() on another vCPU would (see <c>ConnectionChurn</c>). Completes once <paramref name="count"/>
    /// streams have been accepted and are closed; the port stops listening after the last accept.
    /// </summary>
    public Task AcceptAndCloseAsync(uint port, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        lock (_sync)
        {
            var listener = Listen(port);
            var churn = new ConnectionChurn(this, count, listener);
            listener.Churn = churn;
            return churn.Completion;
        }
    }

    /// <summary>
    /// For benchmarks: connects to <paramref name="cid"/>:<paramref name="port"/> <paramref name="count"/>
    /// times from inside the driver thread, <paramref name="concurrency"/> at a time; each stream is closed
    /// as soon as its RESPONSE arrives and the next REQUEST goes out once one is closed. Completes when all
    /// are closed; fails if one is refused or answered with anything but RESPONSE.
    /// </summary>
    public Task ConnectAndCloseAsync(ulong cid, uint port, int count, int concurrency)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(concurrency);
        lock (_sync)
        {
            ThrowIfDisposed();
            var churn = new ConnectionChurn(this, count, cid, port);
            churn.StartConnecting(concurrency);
            return churn.Completion;
        }
    }

    /// <summary>One REQUEST of a connect-and-close (under _sync).</summary>
    internal void StartChurnConnect(ConnectionChurn churn, ulong cid, uint port)
    {
        var stream = new GuestStream(this, AllocateEphemeralPort(), cid, port, connected: false) { Churn = churn };
        _streams.Add(stream.Key, stream);
        SendControl(StreamHeader(stream, VsockOp.Request, 0, 0));
    }

    /// <summary>Every RX packet so far, in arrival order (needs <see cref="SyntheticGuestOptions.RecordReceived"/>).</summary>
    public IReadOnlyList<ReceivedPacket> Received
    {
        get
        {
            lock (_sync)
                return [.. _received];
        }
    }

    public void ClearReceived()
    {
        lock (_sync)
            _received.Clear();
    }

    /// <summary>The first recorded RX packet (earlier ones included) that matches, waiting up to <paramref name="timeout"/>.</summary>
    public async Task<ReceivedPacket> WaitForPacketAsync(Func<ReceivedPacket, bool> match, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(match);
        var deadline = DateTime.UtcNow + timeout;
        var checkedCount = 0;
        while (true)
        {
            Task wait;
            lock (_sync)
            {
                ThrowIfDisposed();
                for (; checkedCount < _received.Count; checkedCount++)
                {
                    if (match(_received[checkedCount]))
                        return _received[checkedCount];
                }
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                    throw new TimeoutException($"no matching RX packet within {timeout.TotalMilliseconds:0} ms ({_received.Count} received)");
                wait = _receivedChanged.Wait().WaitAsync(left);
            }
            try
            {
                await wait.ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // re-checked above
            }
        }
    }

    private uint AllocateEphemeralPort()
    {
        if (_nextEphemeralPort == 0)
            _nextEphemeralPort = _options.FirstEphemeralPort;
        for (var attempt = 0; attempt < 65536; attempt++)
        {
            var candidate = _nextEphemeralPort;
            _nextEphemeralPort = candidate == uint.MaxValue ? _options.FirstEphemeralPort : candidate + 1;
            if (!_listeners.ContainsKey(candidate) && !_streams.Keys.Any(k => k.LocalPort == candidate))
                return candidate;
        }
        throw new InvalidOperationException("no free local port");
    }

    /// <summary>A header for <paramref name="stream"/>, carrying our credit; advertising it resets last_fwd_cnt (Linux virtio_transport_inc_tx_pkt).</summary>
    internal VsockHeader StreamHeader(GuestStream stream, VsockOp op, uint flags, uint length)
    {
        stream.LastFwdCnt = stream.FwdCnt;
        return new VsockHeader(GuestCid, stream.PeerCid, stream.LocalPort, stream.PeerPort, length, stream.Type,
            (ushort)op, flags, _options.BufAlloc, stream.FwdCnt);
    }

    private static ushort TypeOf(SocketKind kind) => kind == SocketKind.Seqpacket ? VsockWire.TypeSeqpacket : VsockWire.TypeStream;

    private void ThrowIfSeqpacketUnsupported(SocketKind kind)
    {
        if (kind == SocketKind.Seqpacket && !SeqpacketNegotiated)
            throw new NotSupportedException("SEQPACKET needs VIRTIO_VSOCK_F_SEQPACKET, which was not negotiated (Linux: ESOCKTNOSUPPORT)");
    }

    internal void SendStreamControl(GuestStream stream, VsockOp op, uint flags)
    {
        if (op == VsockOp.CreditUpdate)
            _creditUpdatesSent++;
        SendControl(StreamHeader(stream, op, flags, 0));
    }

    /// <summary>Posts up to one packet of <paramref name="data"/> as RW; the caller checked credit and state (under _sync).</summary>
    internal bool TryPostStreamData(GuestStream stream, ReadOnlySpan<byte> data, uint flags = 0)
    {
        if (_controlBacklog.Count > 0)
            return false; // control packets queued earlier go first, as in Linux's single send queue
        Span<byte> header = stackalloc byte[VsockHeader.Size];
        var previous = stream.LastFwdCnt;
        StreamHeader(stream, VsockOp.Rw, flags, (uint)data.Length).WriteTo(header);
        if (TryPostTx(header, data))
            return true;
        stream.LastFwdCnt = previous; // not sent after all
        return false;
    }

    internal Task TxSpaceWait()
    {
        var wait = _txSpace.Wait();
        // A lazily reclaiming driver may have turned TX interrupts off: the waiter needs them back.
        if (_options.LazyTxReclaim && _tx.EnableInterrupts())
            _wake.Signal(); // chains were used meanwhile: let the driver thread reclaim them now
        return wait;
    }

    internal int MaxPacketPayload => _options.MaxPacketPayload;

    internal uint CreditUpdateThreshold => _options.CreditUpdateThreshold;

    internal uint BufAlloc => _options.BufAlloc;

    internal TimeSpan CloseTimeout => _options.CloseTimeout;

    internal void ThrowIfUnusable() => ThrowIfDisposed();

    internal bool IsDisposed => _disposed;

    internal void RemoveStream(GuestStream stream)
    {
        if (_streams.TryGetValue(stream.Key, out var current) && ReferenceEquals(current, stream))
            _streams.Remove(stream.Key);
    }

    internal void RemoveListener(GuestListener listener)
    {
        if (_listeners.TryGetValue(listener.Port, out var current) && ReferenceEquals(current, listener))
            _listeners.Remove(listener.Port);
    }

    /// <summary>One RX packet, already validated against the used length (under _sync). Mirrors virtio_transport_recv_pkt.</summary>
    private void OnPacket(in VsockHeader header, ReadOnlySpan<byte> payload)
    {
        if (header.Type != VsockWire.TypeStream && (header.Type != VsockWire.TypeSeqpacket || !SeqpacketNegotiated))
        {
            ResetNoSocket(header);
            return;
        }
        var key = new StreamKey(header.DstPort, header.SrcCid, header.SrcPort);
        if (_streams.TryGetValue(key, out var stream))
        {
            // virtio_transport_recv_pkt: a packet of the other type than its socket's is reset, the socket untouched.
            if (stream.Type != header.Type)
                ResetNoSocket(header);
            else
                OnStreamPacket(stream, header, payload);
            return;
        }
        if (_listeners.TryGetValue(header.DstPort, out var listener))
        {
            if (header.Operation != VsockOp.Request || listener.Type != header.Type)
            {
                ResetNoSocket(header);
                return;
            }
            var child = new GuestStream(this, header.DstPort, header.SrcCid, header.SrcPort, connected: true, header.Type)
            {
                PeerBufAlloc = header.BufAlloc,
                PeerFwdCnt = header.FwdCnt,
            };
            _streams.Add(key, child);
            SendStreamControl(child, VsockOp.Response, 0);
            if (listener.Churn is { } churn)
                churn.OnEstablished(child);
            else
                listener.Enqueue(child);
            return;
        }
        ResetNoSocket(header);
    }

    /// <summary>virtio_transport_reset_no_sock: answer anything but RST with RST, addresses swapped, no credit.</summary>
    private void ResetNoSocket(in VsockHeader header)
    {
        if (header.Operation == VsockOp.Rst)
            return;
        SendControl(new VsockHeader(header.DstCid, header.SrcCid, header.DstPort, header.SrcPort, 0, header.Type,
            (ushort)VsockOp.Rst, 0, 0, 0));
    }

    private void OnStreamPacket(GuestStream stream, in VsockHeader header, ReadOnlySpan<byte> payload)
    {
        if (stream.Done)
            return; // TCP_CLOSING: Linux's recv_disconnecting drops everything
        // virtio_transport_space_update: every packet on a known socket carries the peer's credit.
        stream.PeerBufAlloc = header.BufAlloc;
        stream.PeerFwdCnt = header.FwdCnt;
        var op = header.Operation;
        if (stream.State == StreamState.Connecting)
        {
            switch (op)
            {
                case VsockOp.Response:
                    stream.State = StreamState.Connected;
                    stream.Churn?.OnEstablished(stream);
                    break;
                case VsockOp.Rst:
                    stream.State = StreamState.Refused;
                    RemoveStream(stream);
                    stream.Churn?.Fail($"connection to {stream.PeerCid}:{stream.PeerPort} refused");
                    break;
                case VsockOp.Invalid:
                    break;
                default:
                    SendStreamControl(stream, VsockOp.Rst, 0);
                    stream.State = StreamState.Failed;
                    stream.FailureOp = op;
                    RemoveStream(stream);
                    stream.Churn?.Fail($"connection to {stream.PeerCid}:{stream.PeerPort} was answered with {op}");
                    break;
            }
            stream.Changed.Pulse();
            return;
        }
        switch (op)
        {
            case VsockOp.Rw:
                if (stream.App is { } app)
                {
                    if (payload.Length > _options.BufAlloc)
                    {
                        _creditViolations++;
                        _violations.Add($"RX: RW of {payload.Length} bytes exceeds our buf_alloc ({header})");
                        break;
                    }
                    app.OnPacket(stream, payload, header.Flags);
                    FinishApplicationIfDone(stream);
                }
                else if (!stream.Receive.TryWrite(payload))
                {
                    // Linux virtio_transport_inc_rx_pkt refuses it and the data is dropped.
                    _creditViolations++;
                    _violations.Add($"RX: RW of {payload.Length} bytes with {stream.Receive.Count} of {stream.Receive.Capacity} buffered exceeds our credit ({header})");
                }
                else if (stream.IsSeqpacket)
                {
                    stream.OnMessagePart(payload.Length, header.Flags);
                }
                else if ((header.Flags & (VsockWire.SeqEom | VsockWire.SeqEor)) != 0)
                {
                    _violations.Add($"RX: SEQPACKET flags on a STREAM packet ({header})");
                }
                break;
            case VsockOp.CreditUpdate:
                break;
            case VsockOp.CreditRequest:
                SendStreamControl(stream, VsockOp.CreditUpdate, 0);
                break;
            case VsockOp.Shutdown:
                stream.PeerShutdown |= header.Flags & VsockWire.ShutdownBoth;
                if (stream.PeerShutdown == VsockWire.ShutdownBoth && stream.Receive.Count == 0)
                {
                    SendStreamControl(stream, VsockOp.Rst, 0);
                    MarkDone(stream, CloseOutcome.ClosedWithOwnReset);
                }
                break;
            case VsockOp.Rst:
                stream.PeerReset = true;
                MarkDone(stream, CloseOutcome.ClosedByPeerReset);
                break;
            default:
                break; // REQUEST/RESPONSE/INVALID on an established socket: dropped (recv_connected's -EINVAL)
        }
        stream.Changed.Pulse();
    }

    private readonly List<GuestStream> _applications = [];

    internal void AddApplication(GuestStream stream) => _applications.Add(stream);

    internal void RemoveApplication(GuestStream stream) => _applications.Remove(stream);

    internal void FinishApplicationIfDone(GuestStream stream)
    {
        if (stream.App is { IsDone: true })
            stream.EndApplication();
    }

    /// <summary>After each driver pass: let driver applications post what credit and descriptors now allow (under _sync).</summary>
    private void PumpApplications()
    {
        for (var i = _applications.Count - 1; i >= 0; i--)
        {
            if (i >= _applications.Count)
                continue;
            var stream = _applications[i];
            stream.App?.Pump(stream);
            FinishApplicationIfDone(stream);
        }
    }

    internal void MarkDone(GuestStream stream, CloseOutcome outcome)
    {
        stream.Done = true;
        if (stream.App is { } app)
        {
            app.Fail($"stream {stream} ended ({outcome}) before its driver application finished");
            stream.EndApplication();
        }
        if (stream.Outcome == CloseOutcome.Open)
            stream.Outcome = outcome;
        if (stream.UserClosed)
            RemoveStream(stream);
        stream.DoneSource.TrySetResult();
        stream.Changed.Pulse();
        stream.Churn?.OnDone();
    }

    /// <summary>Ends every wait (disposal or a driver fault): waiters re-check and throw.</summary>
    private void WakeEveryone()
    {
        foreach (var stream in _streams.Values)
        {
            stream.App?.Fail("the synthetic guest stopped");
            stream.Churn?.Fail("the synthetic guest stopped");
            stream.Changed.Pulse();
            stream.DoneSource.TrySetResult();
        }
        foreach (var listener in _listeners.Values)
        {
            listener.Churn?.Fail("the synthetic guest stopped");
            listener.Pulse();
        }
        _txSpace.Pulse();
        _receivedChanged.Pulse();
    }
}

internal readonly record struct StreamKey(uint LocalPort, ulong PeerCid, uint PeerPort);

internal enum StreamState
{
    Connecting,
    Connected,
    Refused,
    Failed,
}

/// <summary>How a stream ended.</summary>
public enum CloseOutcome
{
    /// <summary>Still open.</summary>
    Open,
    /// <summary>The peer sent RST (after our SHUTDOWN, or on its own).</summary>
    ClosedByPeerReset,
    /// <summary>The peer shut down both directions and we answered with RST (Linux does this).</summary>
    ClosedWithOwnReset,
    /// <summary>CloseAsync sent SHUTDOWN, no RST came within the close timeout, so we sent RST.</summary>
    TimedOut,
    /// <summary>Aborted with <see cref="GuestStream.Reset"/>.</summary>
    Reset,
}
