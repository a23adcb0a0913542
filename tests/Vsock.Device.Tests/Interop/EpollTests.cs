using Vsock.Device.Interop;

namespace Vsock.Device.Tests.Interop;

public sealed class EpollTests
{
    [Fact]
    public void Reports_a_signalled_eventfd_with_its_data()
    {
        using var epoll = Epoll.Create();
        using var e = EventFd.Create();
        epoll.Add(e.Fd, EpollEvents.In, 0xDEAD_BEEF_0000_0001);
        Span<EpollEvent> events = stackalloc EpollEvent[4];

        Assert.Equal(0, epoll.Wait(events, 0));
        e.Signal();
        Assert.Equal(1, epoll.Wait(events, 1000));
        Assert.Equal(EpollEvents.In, events[0].Events & EpollEvents.In);
        Assert.Equal(0xDEAD_BEEF_0000_0001ul, events[0].Data);

        // Level-triggered: still ready until read.
        Assert.Equal(1, epoll.Wait(events, 0));
        Assert.True(e.TryRead(out _));
        Assert.Equal(0, epoll.Wait(events, 0));
    }

    [Fact]
    public void Modify_changes_the_data_and_the_interest()
    {
        using var epoll = Epoll.Create();
        using var e = EventFd.Create();
        epoll.Add(e.Fd, EpollEvents.In, 1);
        e.Signal();
        Span<EpollEvent> events = stackalloc EpollEvent[1];

        epoll.Modify(e.Fd, EpollEvents.In, 2);
        Assert.Equal(1, epoll.Wait(events, 0));
        Assert.Equal(2ul, events[0].Data);

        // One-shot: reported once, then disarmed until modified again.
        epoll.Modify(e.Fd, EpollEvents.In | EpollEvents.OneShot, 3);
        Assert.Equal(1, epoll.Wait(events, 0));
        Assert.Equal(3ul, events[0].Data);
        Assert.Equal(0, epoll.Wait(events, 0));
        epoll.Modify(e.Fd, EpollEvents.In, 4);
        Assert.Equal(1, epoll.Wait(events, 0));
        Assert.Equal(4ul, events[0].Data);
    }

    [Fact]
    public void Remove_stops_reports_and_tolerates_unknown_fds()
    {
        using var epoll = Epoll.Create();
        using var e = EventFd.Create();
        epoll.Add(e.Fd, EpollEvents.In, 1);
        e.Signal();
        epoll.Remove(e.Fd);
        Span<EpollEvent> events = stackalloc EpollEvent[1];
        Assert.Equal(0, epoll.Wait(events, 0));

        epoll.Remove(e.Fd); // ENOENT: ignored
        epoll.Remove(1_000_000); // EBADF: ignored
    }

    [Fact]
    public void Adding_twice_or_modifying_an_unknown_fd_is_a_LinuxException()
    {
        using var epoll = Epoll.Create();
        using var e = EventFd.Create();
        epoll.Add(e.Fd, EpollEvents.In, 1);
        Assert.Equal(Errno.EEXIST, Assert.Throws<LinuxException>(() => epoll.Add(e.Fd, EpollEvents.In, 1)).Errno);
        using var other = EventFd.Create();
        Assert.Equal(Errno.ENOENT, Assert.Throws<LinuxException>(() => epoll.Modify(other.Fd, EpollEvents.In, 1)).Errno);
    }

    [Fact]
    public void Wait_times_out_and_wakes_on_a_signal_from_another_thread()
    {
        using var epoll = Epoll.Create();
        using var e = EventFd.Create();
        epoll.Add(e.Fd, EpollEvents.In, 9);
        var events = new EpollEvent[2];
        Assert.Equal(0, epoll.Wait(events, 20));

        var waiter = Task.Run(() => epoll.Wait(events, 5000));
        Thread.Sleep(20);
        e.Signal();
        Assert.True(waiter.Wait(TimeSpan.FromSeconds(5)));
        Assert.Equal(1, waiter.Result);
        Assert.Equal(9ul, events[0].Data);
    }

    [Fact]
    public void Reports_both_of_several_ready_fds()
    {
        using var epoll = Epoll.Create();
        using var a = EventFd.Create();
        using var b = EventFd.Create();
        epoll.Add(a.Fd, EpollEvents.In, 10);
        epoll.Add(b.Fd, EpollEvents.In, 20);
        a.Signal();
        b.Signal();
        Span<EpollEvent> events = stackalloc EpollEvent[4];
        Assert.Equal(2, epoll.Wait(events, 0));
        var data = new[] { events[0].Data, events[1].Data };
        Array.Sort(data);
        Assert.Equal([10ul, 20ul], data);
    }

    [Fact]
    public void An_empty_event_buffer_is_rejected()
    {
        using var epoll = Epoll.Create();
        Assert.Throws<ArgumentException>(() => epoll.Wait([], 0));
    }
}
