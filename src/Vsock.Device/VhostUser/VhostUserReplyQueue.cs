namespace Vsock.Device.VhostUser;

/// <summary>
/// Replies on their way to the VMM, sent without ever waiting: <see cref="Send"/> writes what the socket
/// takes at once and keeps the rest, <see cref="Flush"/> (on EPOLLOUT) sends more, a reply at a time and
/// resuming inside a reply where the last send stopped.
///
/// Bounded by <see cref="MaxReplies"/>: a front-end waits for each reply before it sends the next request
/// that needs one (QEMU reads the reply of every request that has one, and the ack of every NEED_REPLY
/// request, before going on), so a VMM that follows the protocol has at most one reply outstanding, and
/// the kernel's socket buffer (net.core.wmem_default, 208 KiB here: hundreds of replies) holds even that
/// before anything is queued here. Anything queued means the VMM stopped reading; the bound caps the
/// memory such a VMM can make us hold, at <see cref="MaxReplies"/> × <see cref="VhostUserCodec.MaxMessageSize"/>
/// = 64 KiB. Beyond it <see cref="Send"/> throws <see cref="VhostUserError.RepliesNotRead"/> and the
/// session ends. (How long replies may wait is <see cref="VmmTimeouts.UnreadReplies"/>.)
/// </summary>
public sealed class VhostUserReplyQueue(IVhostUserTransport transport)
{
    /// <summary>Replies held while the VMM does not read: see the class comment.</summary>
    public const int MaxReplies = 16;

    /// <summary>The most bytes <see cref="MaxReplies"/> replies can take.</summary>
    public const int MaxBytes = MaxReplies * VhostUserCodec.MaxMessageSize;

    private readonly Queue<byte[]> _waiting = new();
    private int _sentOfFirst;
    private int _bytes;

    /// <summary>True when every reply has been handed to the socket.</summary>
    public bool IsEmpty => _waiting.Count == 0;

    /// <summary>Replies waiting, the one being sent included.</summary>
    public int Count => _waiting.Count;

    /// <summary>Bytes waiting.</summary>
    public int Bytes => _bytes;

    /// <summary>
    /// Sends <paramref name="reply"/> (one whole encoded message), behind any replies still waiting; what
    /// the socket does not take now is copied and kept for <see cref="Flush"/>.
    /// </summary>
    /// <exception cref="VhostUserProtocolException"><see cref="VhostUserError.RepliesNotRead"/>: the queue is full.</exception>
    /// <exception cref="IOException">The VMM is gone.</exception>
    public void Send(ReadOnlySpan<byte> reply)
    {
        if (reply.IsEmpty)
            throw new ArgumentException("a reply has at least a header", nameof(reply));
        if (IsEmpty)
        {
            var sent = transport.Send(reply);
            if (sent == reply.Length)
                return;
            Keep(reply, sent);
            return;
        }
        if (_waiting.Count >= MaxReplies)
            throw new VhostUserProtocolException(VhostUserError.RepliesNotRead,
                $"the VMM does not read its replies: {_waiting.Count} replies ({_bytes} bytes) are waiting, the limit is {MaxReplies}");
        Keep(reply, 0);
        Flush(); // replies stay in order: this one goes only after those before it
    }

    /// <summary>Sends waiting replies until they are all gone (true) or the socket is full again (false).</summary>
    /// <exception cref="IOException">The VMM is gone.</exception>
    public bool Flush()
    {
        while (_waiting.TryPeek(out var first))
        {
            var sent = transport.Send(first.AsSpan(_sentOfFirst));
            _sentOfFirst += sent;
            _bytes -= sent;
            if (_sentOfFirst < first.Length)
                return false;
            _waiting.Dequeue();
            _sentOfFirst = 0;
        }
        return true;
    }

    /// <summary>Forgets everything waiting (the connection is closing).</summary>
    public void Clear()
    {
        _waiting.Clear();
        _sentOfFirst = 0;
        _bytes = 0;
    }

    private void Keep(ReadOnlySpan<byte> reply, int alreadySent)
    {
        _waiting.Enqueue(reply.ToArray());
        if (_waiting.Count == 1)
            _sentOfFirst = alreadySent;
        _bytes += reply.Length - alreadySent;
    }
}
