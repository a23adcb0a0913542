using System.Runtime.InteropServices;

namespace Vsock.Device.Interop;

/// <summary>poll(2) on one fd, for the few places that wait on a single socket without an epoll loop.</summary>
public static class Poll
{
    /// <summary>&gt;0 when readable (or hung up / in error: a read will then tell which), 0 on timeout.</summary>
    public static int WaitReadable(SafeHandle fd, int timeoutMs) => Wait(fd, Libc.POLLIN, timeoutMs);

    /// <summary>&gt;0 when writable (or hung up / in error), 0 on timeout.</summary>
    public static int WaitWritable(SafeHandle fd, int timeoutMs) => Wait(fd, Libc.POLLOUT, timeoutMs);

    private static unsafe int Wait(SafeHandle fd, short events, int timeoutMs)
    {
        ArgumentNullException.ThrowIfNull(fd);
        var added = false;
        try
        {
            fd.DangerousAddRef(ref added);
            var entry = new PollFd { Fd = (int)fd.DangerousGetHandle(), Events = events };
            while (true)
            {
                var result = Libc.Poll(&entry, 1, timeoutMs);
                if (result >= 0)
                {
                    if (result > 0 && (entry.ReturnedEvents & Libc.POLLNVAL) != 0)
                        throw new LinuxException(Errno.EBADF, "poll");
                    return result;
                }
                var errno = Marshal.GetLastPInvokeError();
                if (errno != Errno.EINTR)
                    throw new LinuxException(errno, "poll");
            }
        }
        finally
        {
            if (added)
                fd.DangerousRelease();
        }
    }
}
