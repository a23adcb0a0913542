namespace Vsock.Device.Threading;

/// <summary>
/// Told when a file descriptor registered with an <see cref="EventLoop"/> becomes ready. Runs on the
/// loop's thread: it must only record the readiness and hand it to the fd's owner (the actor layer
/// sends a preallocated message), never do the I/O or block.
/// Readiness may be spurious (a reused registration slot, a coalesced edge); owners find out with a
/// non-blocking call that returns EAGAIN.
/// </summary>
public interface IReadyHandler
{
    void OnReady(uint events);
}

/// <summary>One fd watched by an <see cref="EventLoop"/>; the token tells the loop's slot and its generation.</summary>
public readonly record struct LoopRegistration(int Fd, ulong Token)
{
    public bool IsValid => Token != 0;
}
