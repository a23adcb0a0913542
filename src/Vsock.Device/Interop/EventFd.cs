using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vsock.Device.Interop;

/// <summary>
/// An eventfd: the kick and call notifiers of vhost-user, and the wake fd of an epoll loop.
/// Its value is a 64-bit counter; writes add to it, a read returns it and resets it to zero.
/// </summary>
public sealed class EventFd : IDisposable
{
    private EventFd(SafeFileHandle handle)
    {
        Handle = handle;
    }

    public SafeFileHandle Handle { get; }

    /// <summary>The raw descriptor (for epoll registration); valid while this object is alive.</summary>
    public int Fd => (int)Handle.DangerousGetHandle();

    public static EventFd Create(bool nonBlocking = true)
    {
        var fd = Libc.EventFd(0, Libc.EFD_CLOEXEC | (nonBlocking ? Libc.EFD_NONBLOCK : 0));
        if (fd < 0)
            throw LinuxException.FromLastError("eventfd");
        return new EventFd(new SafeFileHandle(fd, ownsHandle: true));
    }

    /// <summary>Wraps an eventfd received from elsewhere (SET_VRING_KICK/CALL); takes ownership of <paramref name="handle"/>.</summary>
    public static EventFd FromHandle(SafeFileHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        if (handle.IsInvalid || handle.IsClosed)
            throw new ArgumentException("the eventfd handle is invalid or closed", nameof(handle));
        return new EventFd(handle);
    }

    /// <summary>
    /// Adds <paramref name="value"/> to the counter. EAGAIN (the counter would pass 2^64-2, so the
    /// reader already has a wake-up pending) is ignored: a notification is never lost by dropping it.
    /// </summary>
    public unsafe void Signal(ulong value = 1)
    {
        while (true)
        {
            var written = Libc.Write(Handle, &value, sizeof(ulong));
            if (written == sizeof(ulong))
                return;
            if (written >= 0)
                throw new IOException($"eventfd write wrote {written} of 8 bytes");
            var errno = Marshal.GetLastPInvokeError();
            if (errno == Errno.EINTR)
                continue;
            if (errno == Errno.EAGAIN)
                return;
            throw new LinuxException(errno, "eventfd write");
        }
    }

    /// <summary>Reads and resets the counter; false (value 0) when it is zero and the fd is non-blocking.</summary>
    public unsafe bool TryRead(out ulong value)
    {
        ulong counter = 0;
        while (true)
        {
            var read = Libc.Read(Handle, &counter, sizeof(ulong));
            if (read == sizeof(ulong))
            {
                value = counter;
                return true;
            }
            if (read >= 0)
                throw new IOException($"eventfd read returned {read} of 8 bytes");
            var errno = Marshal.GetLastPInvokeError();
            if (errno == Errno.EINTR)
                continue;
            if (errno == Errno.EAGAIN)
            {
                value = 0;
                return false;
            }
            throw new LinuxException(errno, "eventfd read");
        }
    }

    public void Dispose() => Handle.Dispose();
}
