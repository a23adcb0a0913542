using Akka.Actor;
using Akka.Event;
using Vsock.Device.Threading;

namespace Vsock.Actors.Dispatch;

/// <summary>
/// Turns readiness of one fd into a message to its owner: the signal itself, preallocated (Akka.IO's
/// <c>SocketReceived.Instance</c>), at most one in the mailbox at a time. A burst of edges (a guest kicking a queue
/// on every packet) schedules one turn of the owner, which calls <see cref="Take"/> as it starts: that re-arms the
/// signal and returns the EPOLL* bits seen since (the runtime's <c>_eventQueueProcessingRequested</c> idea).
/// The owner tells its signals apart by reference or by <see cref="Tag"/>. Safe on any thread.
/// </summary>
public sealed class ReadinessSignal(IActorRef owner, object? tag = null) : IReadyHandler, INoSerializationVerificationNeeded, IDeadLetterSuppression
{
    private int _queued;
    private int _events;

    /// <summary>What the owner registered the fd for (a queue index, a listener): its own business.</summary>
    public object? Tag => tag;

    public void OnReady(uint events)
    {
        Interlocked.Or(ref _events, (int)events);
        if (Interlocked.Exchange(ref _queued, 1) == 0)
            owner.Tell(this);
    }

    /// <summary>The owner handles the signal: the next edge sends it again. Returns the EPOLL* bits reported since the last call.</summary>
    public uint Take()
    {
        Volatile.Write(ref _queued, 0);
        return (uint)Interlocked.Exchange(ref _events, 0);
    }
}
