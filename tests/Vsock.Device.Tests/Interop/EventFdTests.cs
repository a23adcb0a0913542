using Vsock.Device.Interop;

namespace Vsock.Device.Tests.Interop;

public sealed class EventFdTests
{
    [Fact]
    public void Signals_add_up_and_a_read_resets_the_counter()
    {
        using var e = EventFd.Create();
        Assert.False(e.TryRead(out var none));
        Assert.Equal(0ul, none);

        e.Signal();
        e.Signal(41);
        Assert.True(e.TryRead(out var value));
        Assert.Equal(42ul, value);
        Assert.False(e.TryRead(out _)); // EAGAIN: back to zero
    }

    [Fact]
    public void A_full_counter_drops_the_signal_instead_of_throwing()
    {
        using var e = EventFd.Create();
        e.Signal(ulong.MaxValue - 1); // the largest value an eventfd holds
        e.Signal(); // would overflow: EAGAIN, ignored
        Assert.True(e.TryRead(out var value));
        Assert.Equal(ulong.MaxValue - 1, value);
    }

    [Fact]
    public void An_invalid_value_is_a_LinuxException()
    {
        using var e = EventFd.Create();
        var error = Assert.Throws<LinuxException>(() => e.Signal(ulong.MaxValue));
        Assert.Equal(Errno.EINVAL, error.Errno);
    }

    [Fact]
    public void FromHandle_takes_ownership_of_a_received_eventfd()
    {
        using var original = EventFd.Create();
        var (a, b) = UnixSocket.Pair();
        using (a)
        using (b)
        {
            a.Send([1], [original.Fd]);
            var fds = new List<Microsoft.Win32.SafeHandles.SafeFileHandle>();
            Assert.Equal(1, b.Receive(new byte[1], fds));
            var received = EventFd.FromHandle(Assert.Single(fds));
            received.Signal(7);
            Assert.True(original.TryRead(out var value));
            Assert.Equal(7ul, value);
            received.Dispose();
            Assert.True(fds[0].IsClosed);
        }
    }

    [Fact]
    public void Dispose_closes_the_fd()
    {
        var e = EventFd.Create();
        e.Dispose();
        Assert.True(e.Handle.IsClosed);
        Assert.Throws<ObjectDisposedException>(() => e.Signal());
    }
}
