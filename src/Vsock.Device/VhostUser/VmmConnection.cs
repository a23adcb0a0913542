using Vsock.Device.Interop;
using Vsock.Device.Memory;

namespace Vsock.Device.VhostUser;

/// <summary>What <see cref="VmmConnection.OnReadable"/> left behind.</summary>
public enum VmmReadResult
{
    /// <summary>Everything that had arrived is handled (a partial message may be held): re-arm EPOLLIN and wait.</summary>
    Drained,
    /// <summary>The per-call budget was used up and more may be waiting: call again (a level-triggered re-arm reports it at once).</summary>
    BudgetExhausted,
    /// <summary>The VMM closed the connection between messages: end the session.</summary>
    Closed,
}

/// <summary>Why <see cref="VmmConnection.CheckStall"/> says the VMM must go.</summary>
public enum VmmStall
{
    None,
    /// <summary>Part of a request arrived and the rest did not within <see cref="VmmTimeouts.PartialMessage"/>.</summary>
    PartialMessage,
    /// <summary>Replies waited unread for <see cref="VmmTimeouts.UnreadReplies"/>.</summary>
    UnreadReplies,
}

/// <summary>
/// One VMM's vhost-user connection for its whole life: owns the transport (the non-blocking socket), the
/// resumable <see cref="VhostUserReader"/>, the <see cref="VhostUserSession"/> (and through it the guest
/// memory mappings) and the bounded <see cref="VhostUserReplyQueue"/>. Never blocks: the owner (the VM's
/// device, on its event-loop thread) calls <see cref="OnReadable"/> on EPOLLIN/EPOLLHUP, <see cref="OnWritable"/>
/// on EPOLLOUT, watches EPOLLOUT only while <see cref="WantsWritable"/>, and calls <see cref="CheckStall"/>
/// at <see cref="NextStallCheck"/> to enforce <see cref="VmmTimeouts"/>.
///
/// Errors: <see cref="VhostUserProtocolException"/> (malformed or refused input, a reply queue overflow)
/// and <see cref="IOException"/> (the socket failed) mean the session must end: dispose the connection.
/// Not thread-safe: one thread drives it.
/// </summary>
public sealed class VmmConnection : IDisposable
{
    /// <summary>
    /// Requests handled per <see cref="OnReadable"/> call: a VMM that pipelines requests cannot keep the
    /// VM's loop from its rings for more than a few requests' worth of work (QEMU's start-up sends ~30).
    /// </summary>
    public const int MessagesPerReadable = 8;

    private readonly IVhostUserTransport _transport;
    private readonly VhostUserReader _reader;
    private readonly VhostUserReplyQueue _replies;
    private readonly TimeProvider _time;
    private readonly byte[] _reply = new byte[VhostUserCodec.MaxMessageSize];
    private long? _partialSince;
    private long? _repliesWaitingSince;
    private bool _disposed;

    /// <summary>Takes ownership of <paramref name="socket"/> (made non-blocking) and <paramref name="session"/>.</summary>
    public VmmConnection(UnixSocket socket, VhostUserSession session, VmmTimeouts? timeouts = null, TimeProvider? time = null)
        : this(new UnixSocketTransport(socket), session, timeouts, time)
    {
    }

    /// <summary>Takes ownership of <paramref name="transport"/> and <paramref name="session"/>.</summary>
    public VmmConnection(IVhostUserTransport transport, VhostUserSession session, VmmTimeouts? timeouts = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(session);
        _transport = transport;
        Session = session;
        Timeouts = timeouts ?? VmmTimeouts.Default;
        _time = time ?? TimeProvider.System;
        _reader = new VhostUserReader(transport);
        _replies = new VhostUserReplyQueue(transport);
    }

    public VhostUserSession Session { get; }

    public VmmTimeouts Timeouts { get; }

    /// <summary>True while replies wait for the socket: watch EPOLLOUT and call <see cref="OnWritable"/>.</summary>
    public bool WantsWritable => !_replies.IsEmpty;

    /// <summary>When (a <see cref="TimeProvider"/> timestamp) the first bytes of the request still incomplete arrived; null when none is.</summary>
    public long? PartialMessageSince => _partialSince;

    /// <summary>When (a <see cref="TimeProvider"/> timestamp) the socket first refused a reply that is still waiting; null when none waits.</summary>
    public long? RepliesBlockedSince => _repliesWaitingSince;

    /// <summary>Replies waiting for the VMM to read them.</summary>
    public int QueuedReplies => _replies.Count;

    /// <summary>A guest memory region whose file the VMM pulled away (see <see cref="SigbusGuard"/>), or null.</summary>
    public MemoryRegion? PoisonedRegion => Session.Memory.PoisonedRegion;

    /// <summary>
    /// Reads and handles the requests that are complete, at most <see cref="MessagesPerReadable"/>, and
    /// sends (or queues) their replies. A partial request is kept for the next call.
    /// </summary>
    public VmmReadResult OnReadable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        for (var handled = 0; handled < MessagesPerReadable; handled++)
        {
            var status = _reader.TryRead(out var message);
            if (status == VhostUserReadStatus.EndOfStream)
                return VmmReadResult.Closed;
            if (status == VhostUserReadStatus.NeedMore)
            {
                // The deadline runs from the read that brought the first bytes, and later bytes leave it alone.
                if (!_reader.HasPartialMessage)
                    _partialSince = null;
                else
                    _partialSince ??= _time.GetTimestamp();
                return VmmReadResult.Drained;
            }
            _partialSince = null;
            using (message)
            {
                var length = Session.Handle(message!, _reply);
                if (length > 0)
                    SendReply(_reply.AsSpan(0, length));
            }
        }
        return VmmReadResult.BudgetExhausted;
    }

    /// <summary>Sends waiting replies (EPOLLOUT); <see cref="WantsWritable"/> says whether some are still waiting.</summary>
    public void OnWritable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_replies.Flush())
            _repliesWaitingSince = null;
    }

    /// <summary>Whether a deadline of <see cref="Timeouts"/> has passed.</summary>
    public VmmStall CheckStall()
    {
        var now = _time.GetTimestamp();
        if (_partialSince is { } partial && _time.GetElapsedTime(partial, now) >= Timeouts.PartialMessage)
            return VmmStall.PartialMessage;
        if (_repliesWaitingSince is { } waiting && _time.GetElapsedTime(waiting, now) >= Timeouts.UnreadReplies)
            return VmmStall.UnreadReplies;
        return VmmStall.None;
    }

    /// <summary>How long until the nearest deadline (zero when one has passed); null when nothing is stalled.</summary>
    public TimeSpan? NextStallCheck
    {
        get
        {
            TimeSpan? next = null;
            var now = _time.GetTimestamp();
            if (_partialSince is { } partial)
                next = Timeouts.PartialMessage - _time.GetElapsedTime(partial, now);
            if (_repliesWaitingSince is { } waiting)
            {
                var due = Timeouts.UnreadReplies - _time.GetElapsedTime(waiting, now);
                next = next is { } n && n < due ? n : due;
            }
            return next is { } t && t < TimeSpan.Zero ? TimeSpan.Zero : next;
        }
    }

    /// <summary>A log line for <paramref name="stall"/>.</summary>
    public string Describe(VmmStall stall) => stall switch
    {
        VmmStall.PartialMessage => $"the VMM sent part of a request and not the rest within {Timeouts.PartialMessage.TotalSeconds:0.#} s",
        VmmStall.UnreadReplies => $"the VMM left {_replies.Count} replies ({_replies.Bytes} bytes) unread for {Timeouts.UnreadReplies.TotalSeconds:0.#} s",
        _ => "no stall",
    };

    /// <summary>Releases everything, whatever the state: held fds, queued replies, the session (its memory and ring fds), the socket.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _replies.Clear();
        try
        {
            _reader.Dispose();
        }
        finally
        {
            try
            {
                Session.Dispose();
            }
            finally
            {
                _transport.Dispose();
            }
        }
    }

    private void SendReply(ReadOnlySpan<byte> reply)
    {
        _replies.Send(reply);
        if (!_replies.IsEmpty)
            _repliesWaitingSince ??= _time.GetTimestamp();
    }
}
