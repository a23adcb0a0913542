using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Dispatch.MessageQueues;

namespace Vsock.Actors.Dispatch;

/// <summary>
/// The mailbox of connection actors: a plain queue behind a lock, started with room for four messages. A VM may
/// hold tens of thousands of idle connections, and the default unbounded mailbox (a ConcurrentQueue) allocates a
/// 32-slot segment per actor up front, about 1 KiB each; a connection gets a few messages in its whole life
/// (readiness edges, set-up replies), all but never contended (its loop thread enqueues nearly all of them), so a
/// lock costs nothing here and the 1 KiB per connection does (docs/BENCHMARKS.md, idle memory).
/// Configured as <c>vsock.connection-mailbox</c> in hocon/vsock.hocon.
/// </summary>
public sealed class CompactMailbox(Akka.Actor.Settings settings, Config config) : MailboxType(settings, config), IProducesMessageQueue<CompactMessageQueue>
{
    public override IMessageQueue Create(IActorRef owner, ActorSystem system) => new CompactMessageQueue();
}

/// <summary>The queue behind <see cref="CompactMailbox"/>: FIFO, unbounded, thread-safe.</summary>
public sealed class CompactMessageQueue : IMessageQueue, IUnboundedMessageQueueSemantics
{
    private readonly Queue<Envelope> _queue = new(4);

    public bool HasMessages
    {
        get
        {
            lock (_queue)
                return _queue.Count > 0;
        }
    }

    public int Count
    {
        get
        {
            lock (_queue)
                return _queue.Count;
        }
    }

    public void Enqueue(IActorRef receiver, Envelope envelope)
    {
        lock (_queue)
            _queue.Enqueue(envelope);
    }

    public bool TryDequeue(out Envelope envelope)
    {
        lock (_queue)
            return _queue.TryDequeue(out envelope);
    }

    public void CleanUp(IActorRef owner, IMessageQueue deadletters)
    {
        while (TryDequeue(out var envelope))
            deadletters.Enqueue(owner, envelope);
    }
}
