using Vsock.Testing.Packets;

namespace Vsock.Testing;

/// <summary>
/// A connected af_vsock STREAM socket of the synthetic guest, with Linux's per-stream credit:
/// it advertises buf_alloc, counts fwd_cnt as the reader consumes, sends CREDIT_UPDATE when the
/// space it last advertised drops below the threshold, and never sends more RW payload than the
/// peer's credit. All state is guarded by the guest's lock. A SEQPACKET socket (<see cref="IsSeqpacket"/>)
/// moves whole messages instead (<c>GuestStream.Seqpacket.cs</c>).
/// </summary>
public sealed partial class GuestStream : IAsyncDisposable
{
    private readonly SyntheticGuest _guest;

    internal GuestStream(SyntheticGuest guest, uint localPort, ulong peerCid, uint peerPort, bool connected,
        ushort type = VsockWire.TypeStream)
    {
        _guest = guest;
        LocalPort = localPort;
        PeerCid = peerCid;
        PeerPort = peerPort;
        Type = type;
        State = connected ? StreamState.Connected : StreamState.Connecting;
        Receive = new ByteRing((int)Math.Min(guest.BufAlloc, int.MaxValue));
    }

    public uint LocalPort { get; }
    public ulong PeerCid { get; }
    public uint PeerPort { get; }

    /// <summary>The vsock type of every packet of the stream: VsockWire.TypeStream or TypeSeqpacket.</summary>
    public ushort Type { get; }

    public bool IsSeqpacket => Type == VsockWire.TypeSeqpacket;

    internal StreamKey Key => new(LocalPort, PeerCid, PeerPort);
    internal StreamState State { get; set; }
    internal VsockOp FailureOp { get; set; }
    internal AsyncPulse Changed { get; } = new();
    internal TaskCompletionSource DoneSource { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    internal ByteRing Receive { get; }
    internal uint PeerBufAlloc { get; set; }
    internal uint PeerFwdCnt { get; set; }
    internal uint TxCnt { get; set; }
    internal uint FwdCnt { get; set; }
    internal uint LastFwdCnt { get; set; }
    internal uint PeerShutdown { get; set; }
    internal uint LocalShutdown { get; set; }
    internal bool Done { get; set; }
    internal bool UserClosed { get; set; }
    internal bool PeerReset { get; set; }
    internal CloseOutcome Outcome { get; set; }

    /// <summary>The in-driver accept-and-close or connect-and-close this stream belongs to (benchmarks), if any.</summary>
    internal ConnectionChurn? Churn { get; set; }

    /// <summary>The peer sent RST.</summary>
    public bool IsPeerReset
    {
        get
        {
            lock (_guest.Sync)
                return PeerReset;
        }
    }

    /// <summary>SHUTDOWN flags received from the peer (1 = it will receive no more, 2 = it will send no more).</summary>
    public uint PeerShutdownFlags
    {
        get
        {
            lock (_guest.Sync)
                return PeerShutdown;
        }
    }

    public CloseOutcome CloseOutcome
    {
        get
        {
            lock (_guest.Sync)
                return Outcome;
        }
    }

    /// <summary>What the peer lets us send now: peer_buf_alloc - (tx_cnt - peer_fwd_cnt), at least 0.</summary>
    public long PeerCredit
    {
        get
        {
            lock (_guest.Sync)
                return Credit();
        }
    }

    /// <summary>Bytes received and not yet read.</summary>
    public int BytesBuffered
    {
        get
        {
            lock (_guest.Sync)
                return Receive.Count;
        }
    }

    /// <summary>Payload bytes sent so far (tx_cnt).</summary>
    public uint BytesSent
    {
        get
        {
            lock (_guest.Sync)
                return TxCnt;
        }
    }

    /// <summary>
    /// Sends all of <paramref name="data"/> as RW packets of at most MaxPacketPayload bytes, waiting
    /// for credit and for TX descriptors as needed (a blocking Linux send).
    /// </summary>
    /// <exception cref="GuestStreamClosedException">Reset, shut down, or never connected (Linux: EPIPE/ENOTCONN).</exception>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        ThrowIfSeqpacket();
        var offset = 0;
        while (offset < data.Length)
        {
            var wait = TryWriteSome(data.Span, ref offset);
            if (wait is not null)
                await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Posts what credit and TX descriptors allow of <paramref name="data"/> from <paramref name="offset"/> on, in
    /// packets of at most the guest's largest payload; the last packet of <paramref name="data"/> carries
    /// <paramref name="endFlags"/> (a SEQPACKET message's EOM). Returns what to wait for when it must stop, or null
    /// when all went. The send checks are Linux's for both socket types (vsock_connectible_sendmsg).
    /// </summary>
    private Task? TryWriteSome(ReadOnlySpan<byte> data, ref int offset, uint endFlags = 0)
    {
        lock (_guest.Sync)
        {
            while (offset < data.Length)
            {
                _guest.ThrowIfUnusable();
                if (State != StreamState.Connected)
                    throw new GuestStreamClosedException($"stream {this} is not connected");
                if (Done)
                    throw new GuestStreamClosedException(PeerReset ? $"stream {this} was reset by the peer" : $"stream {this} is closed");
                if ((LocalShutdown & VsockWire.ShutdownSend) != 0)
                    throw new GuestStreamClosedException($"stream {this} is shut down for sending");
                if ((PeerShutdown & VsockWire.ShutdownReceive) != 0)
                    throw new GuestStreamClosedException($"the peer of stream {this} shut down receiving");
                var credit = Credit();
                if (credit == 0)
                    return Changed.Wait();
                var length = (int)Math.Min(Math.Min(data.Length - offset, credit), _guest.MaxPacketPayload);
                var flags = offset + length == data.Length ? endFlags : 0;
                if (!_guest.TryPostStreamData(this, data.Slice(offset, length), flags))
                    return _guest.TxSpaceWait();
                TxCnt += (uint)length;
                offset += length;
            }
            return null;
        }
    }

    /// <summary>Reads what is buffered (waiting for data if none); 0 at end of stream (peer SHUTDOWN SEND, or reset).</summary>
    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ThrowIfSeqpacket();
        if (buffer.IsEmpty)
            return 0;
        while (true)
        {
            var wait = TryRead(buffer.Span, out var read);
            if (wait is null)
                return read;
            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Reads exactly <paramref name="count"/> bytes. Throws <see cref="EndOfStreamException"/> at end of stream before
    /// that, and <see cref="OperationCanceledException"/> (its message says how far it got) when the token is cancelled.
    /// </summary>
    public async Task<byte[]> ReadExactlyAsync(int count, CancellationToken cancellationToken = default)
    {
        var buffer = new byte[count];
        var done = 0;
        try
        {
            while (done < count)
            {
                var n = await ReadAsync(buffer.AsMemory(done), cancellationToken);
                if (n == 0)
                    throw new EndOfStreamException($"{this}: end of stream after {done} of {count} bytes");
                done += n;
            }
        }
        catch (OperationCanceledException e) when (e.CancellationToken == cancellationToken)
        {
            throw new OperationCanceledException($"{this}: cancelled after {done} of {count} bytes", e, cancellationToken);
        }
        return buffer;
    }

    /// <summary>Reads until end of stream; returns everything.</summary>
    public async Task<byte[]> ReadToEndAsync(CancellationToken cancellationToken = default)
    {
        var all = new MemoryStream();
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var n = await ReadAsync(buffer, cancellationToken);
            if (n == 0)
                return all.ToArray();
            all.Write(buffer, 0, n);
        }
    }

    private Task? TryRead(Span<byte> buffer, out int read)
    {
        lock (_guest.Sync)
        {
            _guest.ThrowIfUnusable();
            if (State is StreamState.Connecting or StreamState.Refused or StreamState.Failed)
                throw new GuestStreamClosedException($"stream {this} is not connected");
            if (Receive.Count > 0)
            {
                read = Receive.Read(buffer);
                FwdCnt += (uint)read;
                // virtio_transport_stream_do_dequeue: tell the peer once the space it knows of runs low.
                var delta = FwdCnt - LastFwdCnt;
                var freeSpace = (long)_guest.BufAlloc - delta;
                if (delta > 0 && freeSpace < _guest.CreditUpdateThreshold && !Done)
                    _guest.SendStreamControl(this, VsockOp.CreditUpdate, 0);
                return null;
            }
            read = 0;
            if (Done || (PeerShutdown & VsockWire.ShutdownSend) != 0 || (LocalShutdown & VsockWire.ShutdownReceive) != 0)
                return null;
            return Changed.Wait();
        }
    }

    /// <summary>shutdown(SHUT_WR): SHUTDOWN with the SEND flag; the peer reads end of stream.</summary>
    public void ShutdownWrite()
    {
        lock (_guest.Sync)
        {
            _guest.ThrowIfUnusable();
            if (State != StreamState.Connected || Done || (LocalShutdown & VsockWire.ShutdownSend) != 0)
                return;
            LocalShutdown |= VsockWire.ShutdownSend;
            _guest.SendStreamControl(this, VsockOp.Shutdown, VsockWire.ShutdownSend);
        }
    }

    /// <summary>
    /// close() as Linux's virtio_transport_close does it: RST at once if the peer already shut down
    /// both ways; otherwise SHUTDOWN(RCV|SEND) and wait for the peer's RST, sending RST ourselves
    /// after the close timeout. <see cref="CloseOutcome"/> tells which happened.
    /// </summary>
    public async ValueTask CloseAsync()
    {
        Task done;
        lock (_guest.Sync)
        {
            if (UserClosed)
            {
                done = DoneSource.Task;
            }
            else
            {
                UserClosed = true;
                if (State != StreamState.Connected || Done)
                {
                    _guest.RemoveStream(this);
                    return;
                }
                if (_guest.IsDisposed)
                    return;
                if (PeerShutdown == VsockWire.ShutdownBoth)
                {
                    _guest.SendStreamControl(this, VsockOp.Rst, 0);
                    _guest.MarkDone(this, CloseOutcome.ClosedWithOwnReset);
                    return;
                }
                if (LocalShutdown != VsockWire.ShutdownBoth)
                {
                    LocalShutdown = VsockWire.ShutdownBoth;
                    _guest.SendStreamControl(this, VsockOp.Shutdown, VsockWire.ShutdownBoth);
                }
                done = DoneSource.Task;
            }
        }
        try
        {
            await done.WaitAsync(_guest.CloseTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            lock (_guest.Sync)
            {
                if (!Done && !_guest.IsDisposed)
                {
                    _guest.SendStreamControl(this, VsockOp.Rst, 0);
                    _guest.MarkDone(this, CloseOutcome.TimedOut);
                }
            }
        }
    }

    /// <summary>Aborts the stream with RST.</summary>
    public void Reset()
    {
        lock (_guest.Sync)
        {
            UserClosed = true;
            if (State == StreamState.Connected && !Done && !_guest.IsDisposed)
            {
                _guest.SendStreamControl(this, VsockOp.Rst, 0);
                _guest.MarkDone(this, CloseOutcome.Reset);
            }
            _guest.RemoveStream(this);
        }
    }

    public ValueTask DisposeAsync() => CloseAsync();

    private long Credit()
    {
        var credit = (long)PeerBufAlloc - (uint)(TxCnt - PeerFwdCnt);
        return Math.Max(credit, 0);
    }

    public override string ToString() => $"{LocalPort} <-> {PeerCid}:{PeerPort}";
}
