using Akka.Actor;
using Vsock.Device.Threading;

namespace Vsock.Actors.Dispatch;

/// <summary>
/// Turns readiness of one fd into one preallocated message to its owner, at most one in the mailbox at a
/// time: a burst of edges (a guest kicking a queue on every packet) schedules one turn of the owner, which
/// calls <see cref="Handled"/> as it starts. Accumulates the EPOLL* bits seen since then (<see cref="Take"/>).
/// Safe on any thread (the loop's, or a loop that runs apart from its actors).
/// </summary>
public sealed class ReadinessSignal(IActorRef owner, object message) : IReadyHandler
{
    private int _queued;
    private int _events;

    public object Message => message;

    public void OnReady(uint events)
    {
        Interlocked.Or(ref _events, (int)events);
        if (Interlocked.Exchange(ref _queued, 1) == 0)
            owner.Tell(message);
    }

    /// <summary>The owner is handling the message: the next edge sends another.</summary>
    public void Handled() => Volatile.Write(ref _queued, 0);

    /// <summary>Marks the message handled and returns the EPOLL* bits reported since the last call.</summary>
    public uint Take()
    {
        Handled();
        return (uint)Interlocked.Exchange(ref _events, 0);
    }
}
