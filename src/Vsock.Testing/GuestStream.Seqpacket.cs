using Vsock.Testing.Packets;

namespace Vsock.Testing;

/// <summary>A SEQPACKET message as the receiver got it: recv(2) on a Linux vsock SEQPACKET socket.</summary>
/// <param name="Length">Bytes copied into the caller's buffer.</param>
/// <param name="MessageLength">The message's real length (more than <paramref name="Length"/>: MSG_TRUNC).</param>
/// <param name="EndOfRecord">The sender ended a record (MSG_EOR).</param>
/// <param name="EndOfStream">No message: the peer shut down or reset (recv returns 0).</param>
public readonly record struct GuestMessage(int Length, int MessageLength, bool EndOfRecord, bool EndOfStream)
{
    public bool Truncated => MessageLength > Length;
}

// SOCK_SEQPACKET semantics as Linux's virtio_transport_common.c has them: a message is sent as RW packets of at
// most MaxPacketPayload bytes as the peer's credit allows, EOM (and EOR) on the last; one larger than the peer's
// buf_alloc is refused (EMSGSIZE); a receive takes one whole message and drops what the buffer cannot hold.
public sealed partial class GuestStream
{
    /// <summary>Whole messages received (length, EOR) and not yet read; their bytes are in <see cref="Receive"/>.</summary>
    private readonly Queue<(int Length, bool EndOfRecord)> _messages = new();

    /// <summary>Bytes of the message being received (no EOM yet).</summary>
    private int _openMessage;

    /// <summary>Whole messages received and not yet read.</summary>
    public int MessagesBuffered
    {
        get
        {
            lock (_guest.Sync)
                return _messages.Count;
        }
    }

    /// <summary>An RW packet's payload went into <see cref="Receive"/> (under the guest's lock).</summary>
    internal void OnMessagePart(int length, uint flags)
    {
        _openMessage += length;
        if ((flags & VsockWire.SeqEom) == 0)
            return;
        _messages.Enqueue((_openMessage, (flags & VsockWire.SeqEor) != 0));
        _openMessage = 0;
    }

    /// <summary>
    /// send(2) of one message: RW packets of at most MaxPacketPayload bytes, each when the peer's credit allows, EOM
    /// (and EOR with <paramref name="endOfRecord"/>) on the last. An empty message sends nothing (as Linux).
    /// </summary>
    /// <exception cref="GuestMessageTooLargeException">Longer than the peer's buf_alloc (Linux: EMSGSIZE).</exception>
    public async ValueTask SendMessageAsync(ReadOnlyMemory<byte> message, bool endOfRecord = false, CancellationToken cancellationToken = default)
    {
        lock (_guest.Sync)
        {
            ThrowIfNotSeqpacket();
            if (State == StreamState.Connected && message.Length > PeerBufAlloc)
                throw new GuestMessageTooLargeException(message.Length, PeerBufAlloc);
        }
        var end = VsockWire.SeqEom | (endOfRecord ? VsockWire.SeqEor : 0);
        var offset = 0;
        while (offset < message.Length)
        {
            var wait = TryWriteSome(message.Span, ref offset, end);
            if (wait is not null)
                await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// recv(2) of one message (waiting for a whole one): copies what fits into <paramref name="buffer"/> and drops
    /// the rest. After it, like Linux 6.1's virtio_transport_seqpacket_do_dequeue, a CREDIT_UPDATE goes to the peer.
    /// </summary>
    public async ValueTask<GuestMessage> ReceiveMessageAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var wait = TryReceiveMessage(buffer.Span, out var message);
            if (wait is null)
                return message;
            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private Task? TryReceiveMessage(Span<byte> buffer, out GuestMessage message)
    {
        lock (_guest.Sync)
        {
            _guest.ThrowIfUnusable();
            ThrowIfNotSeqpacket();
            if (State is StreamState.Connecting or StreamState.Refused or StreamState.Failed)
                throw new GuestStreamClosedException($"stream {this} is not connected");
            if (_messages.TryDequeue(out var next))
            {
                var copied = Receive.Read(buffer[..Math.Min(buffer.Length, next.Length)]);
                Receive.Skip(next.Length - copied);
                FwdCnt += (uint)next.Length;
                if (!Done)
                    _guest.SendStreamControl(this, VsockOp.CreditUpdate, 0);
                message = new GuestMessage(copied, next.Length, next.EndOfRecord, EndOfStream: false);
                return null;
            }
            message = new GuestMessage(0, 0, false, EndOfStream: true);
            if (Done || (PeerShutdown & VsockWire.ShutdownSend) != 0 || (LocalShutdown & VsockWire.ShutdownReceive) != 0)
                return null;
            return Changed.Wait();
        }
    }

    private void ThrowIfSeqpacket()
    {
        if (IsSeqpacket)
            throw new InvalidOperationException($"stream {this} is SEQPACKET: use SendMessageAsync and ReceiveMessageAsync");
    }

    private void ThrowIfNotSeqpacket()
    {
        if (!IsSeqpacket)
            throw new InvalidOperationException($"stream {this} is a STREAM socket: use WriteAsync and ReadAsync");
    }
}
