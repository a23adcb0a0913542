namespace Vsock.Device.VhostUser;

/// <summary>
/// Every time limit on the VMM's control connection, in one place. Nothing on that connection ever
/// blocks the VM's event loop (see <see cref="VmmConnection"/>), so these limits are not about the loop:
/// they decide how long a VMM that stopped halfway may hold on to its device before it is disconnected.
/// Both are deadlines fixed when the stall starts; later bytes do not extend them, so a VMM that trickles
/// a byte at a time is cut off as surely as one that sends nothing.
/// </summary>
public sealed record VmmTimeouts
{
    public static VmmTimeouts Default { get; } = new();

    /// <summary>
    /// A request must be complete this long after its first byte arrived. QEMU writes each request with
    /// one sendmsg (header, payload and fds together), so a well-behaved VMM never leaves one half sent;
    /// 5 s leaves room for a VMM whose thread is descheduled on a loaded host. (The old blocking reader
    /// gave up after 2 s of silence, but each byte restarted the wait, and the loop was frozen meanwhile.)
    /// </summary>
    public TimeSpan PartialMessage { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Replies may wait unread this long, counted from when the socket first refused one. Replies only
    /// wait once the kernel's socket buffer is full (hundreds of them), so a VMM that gets here stopped
    /// reading long ago; 5 s, as for a half-sent request. Separately, the number of waiting replies is
    /// capped by <see cref="VhostUserReplyQueue.MaxReplies"/>.
    /// </summary>
    public TimeSpan UnreadReplies { get; init; } = TimeSpan.FromSeconds(5);
}
