using System.Collections.Concurrent;
using System.Diagnostics;
using Vsock.Device.Interop;

namespace Vsock.Device.Threading;

/// <summary>
/// One thread that runs two kinds of work: queued work items (the actor layer's mailboxes, see
/// <c>Vsock.Actors.Dispatch.EventLoopExecutor</c>) and readiness of the fds registered with it
/// (virtqueue kicks, the vhost-user socket, host sockets), reported through one epoll instance.
///
/// Why one thread for both: a VM's device, its connection actors and its fds then live on the same
/// thread, so a host socket becoming readable or the guest kicking a queue wakes exactly one thread,
/// and every hand-off after that (readiness → actor → device → ring) is a queue operation on the thread
/// that is already running. With a separate waiter thread and the runtime's socket threads a packet
/// crossed three or four threads, ~10 µs each on this class of machine (docs/BENCHMARKS.md).
///
/// When there is nothing to do the loop first polls (epoll_wait with timeout 0, and its idle hooks: the VM's
/// rings) for up to the spin time, then lets the hooks re-arm their notifications and blocks in epoll_wait.
/// Work queued from another thread wakes it through an eventfd, which is only written when the loop is
/// (about to be) blocked.
///
/// Registrations and <see cref="Execute"/> may come from any thread. A work item or handler that throws
/// is reported to <see cref="Failed"/> and the loop carries on: one bad item must not stop a VM.
/// </summary>
public sealed class EventLoop : IDisposable
{
    [ThreadStatic]
    private static EventLoop? t_current;

    private const ulong WakeToken = ulong.MaxValue;
    private const int WorkBudget = 256;

    private readonly Epoll _epoll;
    private readonly EventFd _wake;
    private readonly ConcurrentQueue<object> _work = new();
    private readonly Action<object> _runWork;
    private readonly Thread _thread;
    private readonly long _spinTicks;
    private readonly object _slotLock = new();
    private Slot[] _slots = new Slot[64];
    private ILoopIdleHook[] _idleHooks = [];
    private readonly Stack<int> _freeSlots = new();
    private int _slotCount = 1; // slot 0 is never used, so a token is never 0
    private int _sleeping;
    private int _wakePending;
    private long _idlePollTicks;
    private volatile bool _stopping;

    private sealed class Slot
    {
        public volatile IReadyHandler? Handler;
        public volatile uint Generation;
    }

    /// <param name="name">The thread's name.</param>
    /// <param name="runWork">Runs one item passed to <see cref="Execute"/> (so items need no wrapper object).</param>
    /// <param name="spin">How long an idle loop keeps polling before it blocks; zero blocks at once.</param>
    public EventLoop(string name, Action<object>? runWork = null, TimeSpan spin = default)
    {
        _runWork = runWork ?? (item => ((Action)item)());
        _spinTicks = (long)(spin.TotalSeconds * Stopwatch.Frequency);
        _epoll = Epoll.Create();
        _wake = EventFd.Create(nonBlocking: true);
        _epoll.Add(_wake.Fd, EpollEvents.In, WakeToken);
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>The loop whose thread is calling, or null on any other thread.</summary>
    public static EventLoop? Current => t_current;

    /// <summary>
    /// Time the loop has spent polling with nothing to do (its spin before it sleeps), in microseconds since it started:
    /// the part of its thread's CPU time that is not work. Written by the loop thread, readable from any.
    /// </summary>
    public long IdlePollMicroseconds => TicksToMicroseconds(Volatile.Read(ref _idlePollTicks));

    /// <summary>Exact and without overflow for any tick count (ticks * 10^6 would overflow after ~2.5 h of ns ticks).</summary>
    internal static long TicksToMicroseconds(long ticks) =>
        ticks / Stopwatch.Frequency * 1_000_000 + ticks % Stopwatch.Frequency * 1_000_000 / Stopwatch.Frequency;

    /// <summary>True on this loop's own thread.</summary>
    public bool IsCurrent => t_current == this;

    /// <summary>A work item or handler threw; the loop goes on. Called on the loop thread.</summary>
    public event Action<Exception>? Failed;

    /// <summary>Queues <paramref name="item"/> to run on the loop thread (after the items queued before it).</summary>
    public void Execute(object item)
    {
        _work.Enqueue(item);
        if (t_current == this)
            return; // the loop is running: it looks at the queue before it sleeps
        // Pairs with the fence in WaitIdle: either the loop sees the item, or we see it sleeping.
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _sleeping) == 1 && Interlocked.Exchange(ref _wakePending, 1) == 0)
            _wake.Signal();
    }

    /// <summary>
    /// Watches <paramref name="fd"/> for <paramref name="events"/> (EPOLL* bits, edge-triggered or
    /// one-shot as the caller wants). The caller keeps the fd open until after <see cref="Remove"/>.
    /// </summary>
    public LoopRegistration Add(int fd, uint events, IReadyHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        ulong token;
        int index;
        lock (_slotLock)
        {
            if (!_freeSlots.TryPop(out index))
            {
                index = _slotCount++;
                if (index == _slots.Length)
                {
                    var grown = new Slot[_slots.Length * 2];
                    Array.Copy(_slots, grown, _slots.Length);
                    Volatile.Write(ref _slots, grown);
                }
                _slots[index] = new Slot();
            }
            var slot = _slots[index];
            slot.Handler = handler;
            token = ((ulong)slot.Generation << 32) | (uint)index;
        }
        try
        {
            _epoll.Add(fd, events, token);
        }
        catch
        {
            Release(index);
            throw;
        }
        return new LoopRegistration(fd, token);
    }

    /// <summary>Adds a hook the idle loop polls before it sleeps (see <see cref="ILoopIdleHook"/>). Any thread.</summary>
    public void AddIdleHook(ILoopIdleHook hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        lock (_slotLock)
            Volatile.Write(ref _idleHooks, [.. _idleHooks, hook]);
    }

    /// <summary>Removes a hook; on the loop thread it is not called after this returns.</summary>
    public void RemoveIdleHook(ILoopIdleHook hook)
    {
        lock (_slotLock)
            Volatile.Write(ref _idleHooks, _idleHooks.Where(h => !ReferenceEquals(h, hook)).ToArray());
    }

    /// <summary>Changes the events of a registration (and re-arms a one-shot one).</summary>
    public void Modify(LoopRegistration registration, uint events) => _epoll.Modify(registration.Fd, events, registration.Token);

    /// <summary>
    /// Stops watching; the handler is not called after this returns on the loop thread. With
    /// <paramref name="closingFd"/> the caller closes the fd right after and is its only holder: closing it takes it
    /// out of the epoll set by itself, so the EPOLL_CTL_DEL system call is saved (one per connection); events already
    /// read for it are dropped by the slot's generation.
    /// </summary>
    public void Remove(LoopRegistration registration, bool closingFd = false)
    {
        if (!registration.IsValid)
            return;
        if (!_stopping && !closingFd)
            _epoll.Remove(registration.Fd);
        lock (_slotLock)
        {
            var index = (int)(uint)registration.Token;
            var slot = _slots[index];
            if (slot.Generation == (uint)(registration.Token >> 32))
                Release(index);
        }
    }

    private void Release(int index)
    {
        lock (_slotLock)
        {
            var slot = _slots[index];
            slot.Handler = null;
            slot.Generation++; // events already read for the old registration no longer match
            _freeSlots.Push(index);
        }
    }

    private void Run()
    {
        t_current = this;
        Span<EpollEvent> events = stackalloc EpollEvent[128];
        while (!_stopping)
        {
            try
            {
                var ran = RunWork();
                var count = ran == WorkBudget || !_work.IsEmpty ? PollBusy(events) : WaitIdle(events);
                for (var i = 0; i < count; i++)
                    Dispatch(events[i]);
            }
            catch (Exception e) when (!_stopping)
            {
                Report(e);
            }
            catch (Exception)
            {
                // Disposal raced with epoll_wait: nothing to report.
            }
        }
    }

    private int RunWork()
    {
        var ran = 0;
        while (ran < WorkBudget && _work.TryDequeue(out var item))
        {
            ran++;
            try
            {
                _runWork(item);
            }
            catch (Exception e)
            {
                Report(e);
            }
        }
        return ran;
    }

    /// <summary>Between batches of work: the fds without waiting, and the hooks (their notifications stay off while busy).</summary>
    private int PollBusy(Span<EpollEvent> events)
    {
        var count = _epoll.Wait(events, 0);
        PollHooks();
        return count;
    }

    private int WaitIdle(Span<EpollEvent> events)
    {
        if (_spinTicks > 0)
        {
            var start = Stopwatch.GetTimestamp();
            try
            {
                do
                {
                    var polled = _epoll.Wait(events, 0);
                    if (polled > 0)
                        return polled;
                    PollHooks();
                    if (!_work.IsEmpty || _stopping)
                        return 0;
                } while (Stopwatch.GetTimestamp() - start < _spinTicks);
            }
            finally
            {
                Volatile.Write(ref _idlePollTicks, _idlePollTicks + (Stopwatch.GetTimestamp() - start));
            }
        }
        // The hooks re-arm their notifications now, so nothing that arrives from here on goes unnoticed.
        if (!PrepareHooksToSleep() || !_work.IsEmpty)
            return 0;
        Interlocked.Exchange(ref _sleeping, 1); // a full fence: pairs with Execute's
        if (!_work.IsEmpty || _stopping)
        {
            Volatile.Write(ref _sleeping, 0);
            return 0;
        }
        var count = _epoll.Wait(events, -1);
        Volatile.Write(ref _sleeping, 0);
        return count;
    }

    private void PollHooks()
    {
        foreach (var hook in Volatile.Read(ref _idleHooks))
        {
            try
            {
                hook.Poll();
            }
            catch (Exception e)
            {
                Report(e);
            }
        }
    }

    private bool PrepareHooksToSleep()
    {
        var sleep = true;
        foreach (var hook in Volatile.Read(ref _idleHooks))
        {
            try
            {
                sleep &= hook.PrepareToSleep();
            }
            catch (Exception e)
            {
                Report(e);
            }
        }
        return sleep;
    }

    private void Dispatch(in EpollEvent e)
    {
        if (e.Data == WakeToken)
        {
            // Read first, then clear: a producer that signals in between leaves a count, so at worst one
            // spurious wake-up later; clearing first could swallow its signal and sleep on its work.
            _wake.TryRead(out _);
            Volatile.Write(ref _wakePending, 0);
            return;
        }
        var index = (int)(uint)e.Data;
        var slots = Volatile.Read(ref _slots);
        if ((uint)index >= (uint)slots.Length || slots[index] is not { } slot)
            return;
        if (slot.Generation != (uint)(e.Data >> 32) || slot.Handler is not { } handler)
            return;
        try
        {
            handler.OnReady(e.Events);
        }
        catch (Exception ex)
        {
            Report(ex);
        }
    }

    private void Report(Exception e)
    {
        try
        {
            Failed?.Invoke(e);
        }
        catch (Exception)
        {
            // A failing failure handler must not take the loop down either.
        }
    }

    /// <summary>Stops the thread (queued work that has not run is dropped) and closes the epoll instance.</summary>
    public void Dispose()
    {
        if (_stopping)
            return;
        _stopping = true;
        _wake.Signal();
        if (Thread.CurrentThread != _thread)
            _thread.Join(TimeSpan.FromSeconds(5));
        _epoll.Dispose();
        _wake.Dispose();
    }
}
