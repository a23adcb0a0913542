using System.Collections.Concurrent;
using Vsock.Device.Interop;
using Vsock.Device.Threading;

namespace Vsock.Device.Tests.Threading;

public sealed class EventLoopTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private sealed class RecordingHandler(EventLoop loop) : IReadyHandler
    {
        public readonly BlockingCollection<(uint Events, bool OnLoop)> Seen = new();
        public void OnReady(uint events) => Seen.Add((events, loop.IsCurrent));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(50)]
    public void Work_from_other_threads_runs_on_the_loop_in_order_and_none_is_lost(int spinMicroseconds)
    {
        // Two producers race the loop going to sleep: a lost wake-up would leave items unrun.
        using var loop = new EventLoop("test-loop", spin: TimeSpan.FromMicroseconds(spinMicroseconds));
        const int perProducer = 20_000;
        var seen = new ConcurrentDictionary<int, List<int>>();
        var offLoop = 0;
        using var done = new CountdownEvent(2 * perProducer);
        var producers = Enumerable.Range(0, 2).Select(p => new Thread(() =>
        {
            for (var i = 0; i < perProducer; i++)
            {
                var n = i;
                loop.Execute(new Action(() =>
                {
                    if (!loop.IsCurrent)
                        Interlocked.Increment(ref offLoop);
                    seen.GetOrAdd(p, _ => new List<int>()).Add(n);
                    done.Signal();
                }));
                if (i % 1000 == 0)
                    Thread.Sleep(1); // let the loop fall asleep now and then
            }
        })).ToList();
        producers.ForEach(t => t.Start());
        Assert.True(done.Wait(Wait), $"{done.CurrentCount} items never ran");
        Assert.Equal(0, offLoop);
        foreach (var list in seen.Values)
            Assert.Equal(Enumerable.Range(0, perProducer), list);
    }

    [Fact]
    public void Readiness_is_reported_on_the_loop_thread_until_removed()
    {
        using var loop = new EventLoop("test-loop");
        using var fd = EventFd.Create();
        var handler = new RecordingHandler(loop);
        var registration = loop.Add(fd.Fd, EpollEvents.In | EpollEvents.EdgeTriggered, handler);

        fd.Signal();
        Assert.True(handler.Seen.TryTake(out var first, Wait));
        Assert.Equal(EpollEvents.In, first.Events & EpollEvents.In);
        Assert.True(first.OnLoop);

        fd.Signal(); // a new edge
        Assert.True(handler.Seen.TryTake(out _, Wait));

        loop.Remove(registration);
        fd.Signal();
        Assert.False(handler.Seen.TryTake(out _, TimeSpan.FromMilliseconds(200)));
    }

    [Fact]
    public void A_reused_slot_does_not_hear_the_old_registration()
    {
        using var loop = new EventLoop("test-loop");
        using var a = EventFd.Create();
        using var b = EventFd.Create();
        var first = new RecordingHandler(loop);
        var second = new RecordingHandler(loop);
        var ra = loop.Add(a.Fd, EpollEvents.In | EpollEvents.EdgeTriggered, first);
        loop.Remove(ra);
        var rb = loop.Add(b.Fd, EpollEvents.In | EpollEvents.EdgeTriggered, second);
        Assert.Equal((uint)ra.Token, (uint)rb.Token); // the slot was reused...
        Assert.NotEqual(ra.Token, rb.Token);           // ...under a new generation
        a.Signal();
        b.Signal();
        Assert.True(second.Seen.TryTake(out _, Wait));
        Assert.Empty(first.Seen);
    }

    [Fact]
    public void An_fd_removed_as_closing_leaves_the_set_when_closed_and_its_number_can_be_registered_again()
    {
        using var loop = new EventLoop("test-loop");
        var first = new RecordingHandler(loop);
        var a = EventFd.Create();
        var number = a.Fd;
        var ra = loop.Add(number, EpollEvents.In | EpollEvents.EdgeTriggered, first);
        loop.Remove(ra, closingFd: true); // no EPOLL_CTL_DEL: the close below takes it out
        a.Dispose();

        // The kernel hands the lowest free number out again: a new fd on the same number can be added (EPOLL_CTL_ADD
        // would fail with EEXIST had the old one stayed in the set) and only its own handler hears it.
        using var b = EventFd.Create();
        Assert.Equal(number, b.Fd);
        var second = new RecordingHandler(loop);
        loop.Add(b.Fd, EpollEvents.In | EpollEvents.EdgeTriggered, second);
        b.Signal();
        Assert.True(second.Seen.TryTake(out _, Wait));
        Assert.Empty(first.Seen);
    }

    [Fact]
    public void A_throwing_item_or_handler_is_reported_and_the_loop_goes_on()
    {
        using var loop = new EventLoop("test-loop");
        var failures = new BlockingCollection<Exception>();
        loop.Failed += failures.Add;
        loop.Execute(new Action(() => throw new InvalidOperationException("item")));
        using var fd = EventFd.Create();
        var throwing = new ThrowingHandler();
        loop.Add(fd.Fd, EpollEvents.In | EpollEvents.EdgeTriggered, throwing);
        fd.Signal();

        Assert.True(failures.TryTake(out var e1, Wait));
        Assert.True(failures.TryTake(out var e2, Wait));
        Assert.Equal(["handler", "item"], new[] { e1.Message, e2.Message }.Order());
        using var ran = new ManualResetEventSlim();
        loop.Execute(new Action(ran.Set));
        Assert.True(ran.Wait(Wait));
    }

    private sealed class ThrowingHandler : IReadyHandler
    {
        public void OnReady(uint events) => throw new InvalidOperationException("handler");
    }

    [Fact]
    public void Current_is_the_loop_only_on_its_thread()
    {
        using var loop = new EventLoop("test-loop");
        Assert.Null(EventLoop.Current);
        var onLoop = new TaskCompletionSource<EventLoop?>();
        loop.Execute(new Action(() => onLoop.SetResult(EventLoop.Current)));
        Assert.Same(loop, onLoop.Task.Wait(Wait) ? onLoop.Task.Result : null);
    }

    [Fact]
    public void Idle_polling_is_counted_as_the_spin_it_was_and_not_without_a_spin()
    {
        // Each item sends the loop into its spin once it ran: 20 items 10 ms apart are 20 full spins of 2 ms (at least
        // half of them on a loaded machine, where the loop may run two items in one turn), never more than the wall time.
        var started = System.Diagnostics.Stopwatch.StartNew();
        using var spinning = new EventLoop("test-loop", spin: TimeSpan.FromMilliseconds(2));
        using var blocking = new EventLoop("test-loop");
        using var ran = new CountdownEvent(40);
        for (var i = 0; i < 20; i++)
        {
            spinning.Execute(new Action(() => ran.Signal()));
            blocking.Execute(new Action(() => ran.Signal()));
            Thread.Sleep(10);
        }
        Assert.True(ran.Wait(Wait));
        Thread.Sleep(10);
        Assert.InRange(spinning.IdlePollMicroseconds, 10 * 2000, (long)started.Elapsed.TotalMicroseconds);
        Assert.Equal(0, blocking.IdlePollMicroseconds);
    }

    [Fact]
    public void Idle_polling_time_converts_exactly_for_a_daemon_that_ran_for_years()
    {
        var f = System.Diagnostics.Stopwatch.Frequency;
        Assert.Equal(1_500_000, EventLoop.TicksToMicroseconds(f * 3 / 2));
        var tenYears = 10L * 365 * 24 * 3600;
        Assert.Equal(tenYears * 1_000_000 + 250_000, EventLoop.TicksToMicroseconds(tenYears * f + f / 4));
    }
}
