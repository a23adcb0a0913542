using Akka.Actor;
using Vsock.Actors.Dispatch;

namespace Vsock.Actors.Tests.Dispatch;

/// <summary>The connection actors' mailbox: a FIFO that hands what is left to dead letters on clean-up.</summary>
public sealed class CompactMailboxTests
{
    [Fact]
    public void Messages_come_out_in_order_and_the_count_follows()
    {
        var queue = new CompactMessageQueue();
        Assert.False(queue.HasMessages);
        for (var i = 0; i < 100; i++)
            queue.Enqueue(ActorRefs.Nobody, new Envelope(i, ActorRefs.NoSender));
        Assert.Equal(100, queue.Count);
        for (var i = 0; i < 100; i++)
        {
            Assert.True(queue.TryDequeue(out var envelope));
            Assert.Equal(i, envelope.Message);
        }
        Assert.False(queue.TryDequeue(out _));
        Assert.False(queue.HasMessages);
    }

    [Fact]
    public void Producers_on_other_threads_lose_nothing()
    {
        var queue = new CompactMessageQueue();
        Parallel.For(0, 4, p =>
        {
            for (var i = 0; i < 10_000; i++)
                queue.Enqueue(ActorRefs.Nobody, new Envelope((p, i), ActorRefs.NoSender));
        });
        var last = new int[4];
        Array.Fill(last, -1);
        var count = 0;
        while (queue.TryDequeue(out var envelope))
        {
            var (p, i) = ((int, int))envelope.Message;
            Assert.True(i > last[p], "a producer's messages came out of order");
            last[p] = i;
            count++;
        }
        Assert.Equal(40_000, count);
    }

    [Fact]
    public void Clean_up_hands_what_is_left_to_dead_letters()
    {
        var queue = new CompactMessageQueue();
        queue.Enqueue(ActorRefs.Nobody, new Envelope("a", ActorRefs.NoSender));
        queue.Enqueue(ActorRefs.Nobody, new Envelope("b", ActorRefs.NoSender));
        var deadLetters = new CompactMessageQueue();
        queue.CleanUp(ActorRefs.Nobody, deadLetters);
        Assert.False(queue.HasMessages);
        Assert.True(deadLetters.TryDequeue(out var first));
        Assert.Equal("a", first.Message);
        Assert.True(deadLetters.TryDequeue(out var second));
        Assert.Equal("b", second.Message);
    }
}
