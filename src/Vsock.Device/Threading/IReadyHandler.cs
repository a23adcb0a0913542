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

/// <summary>
/// Work an idle <see cref="EventLoop"/> polls for before it sleeps (the VM's rings: with their notifications left
/// suppressed while the loop is busy or spinning, the guest's new chains are found by polling, not by a kick).
/// Called on the loop's thread, between the work it runs; must be cheap and never block.
/// </summary>
public interface ILoopIdleHook
{
    /// <summary>Called while the idle loop spins. True if it found work (it queued it on the loop, e.g. told its actor).</summary>
    bool Poll();

    /// <summary>
    /// Called once right before the loop blocks in epoll_wait: re-arm notifications here. False to keep the loop
    /// awake because work turned up meanwhile (queued, as for <see cref="Poll"/>).
    /// </summary>
    bool PrepareToSleep();
}
