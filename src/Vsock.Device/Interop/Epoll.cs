using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vsock.Device.Interop;

/// <summary>
/// An epoll instance. Registration takes raw fds because epoll itself only remembers numbers: the
/// caller must <see cref="Remove"/> an fd before closing it (epoll would otherwise keep reporting it
/// while any duplicate of it is open).
/// </summary>
public sealed class Epoll : IDisposable
{
    // x86_64 is the one architecture whose kernel epoll_event is packed (EPOLL_PACKED).
    private static readonly bool PackedEvents = RuntimeInformation.ProcessArchitecture == Architecture.X64;

    // Bounds the conversion buffer on non-x86_64: 256 * 16 bytes of stack per Wait.
    private const int MaxConvertedEvents = 256;

    private Epoll(SafeFileHandle handle)
    {
        Handle = handle;
    }

    public SafeFileHandle Handle { get; }

    public int Fd => (int)Handle.DangerousGetHandle();

    public static Epoll Create()
    {
        var fd = Libc.EpollCreate1(Libc.EPOLL_CLOEXEC);
        if (fd < 0)
            throw LinuxException.FromLastError("epoll_create1");
        return new Epoll(new SafeFileHandle(fd, ownsHandle: true));
    }

    public void Add(int fd, uint events, ulong data) => Control(Libc.EPOLL_CTL_ADD, fd, events, data, "epoll_ctl ADD");

    public void Modify(int fd, uint events, ulong data) => Control(Libc.EPOLL_CTL_MOD, fd, events, data, "epoll_ctl MOD");

    /// <summary>Unregisters <paramref name="fd"/>; an fd that is not registered (ENOENT) or already closed (EBADF) is not an error.</summary>
    public unsafe void Remove(int fd)
    {
        // A non-null event pointer keeps pre-2.6.9 kernels happy; the kernel ignores it.
        var ignored = default(AlignedEpollEvent);
        if (Libc.EpollCtl(Handle, Libc.EPOLL_CTL_DEL, fd, &ignored) == 0)
            return;
        var errno = Marshal.GetLastPInvokeError();
        if (errno is Errno.ENOENT or Errno.EBADF)
            return;
        throw new LinuxException(errno, $"epoll_ctl DEL fd {fd}");
    }

    /// <summary>
    /// Waits for events (timeout -1 = forever, 0 = poll) and returns how many were stored in
    /// <paramref name="events"/>; 0 on timeout. An interrupted wait (EINTR) is restarted with the
    /// same timeout.
    /// </summary>
    public unsafe int Wait(Span<EpollEvent> events, int timeoutMs)
    {
        if (events.IsEmpty)
            throw new ArgumentException("epoll_wait needs room for at least one event", nameof(events));
        // Only non-x86_64 needs the conversion buffer; x86_64 lets the kernel write into events directly.
        Span<AlignedEpollEvent> aligned = PackedEvents
            ? default
            : stackalloc AlignedEpollEvent[Math.Min(events.Length, MaxConvertedEvents)];
        while (true)
        {
            int count;
            if (PackedEvents)
            {
                fixed (EpollEvent* buffer = events)
                    count = Libc.EpollWait(Handle, buffer, events.Length, timeoutMs);
            }
            else
            {
                fixed (AlignedEpollEvent* buffer = aligned)
                    count = Libc.EpollWait(Handle, buffer, aligned.Length, timeoutMs);
                for (var i = 0; i < count; i++)
                    events[i] = new EpollEvent(aligned[i].Events, aligned[i].Data);
            }
            if (count >= 0)
                return count;
            var errno = Marshal.GetLastPInvokeError();
            if (errno != Errno.EINTR)
                throw new LinuxException(errno, "epoll_wait");
        }
    }

    private unsafe void Control(int operation, int fd, uint events, ulong data, string name)
    {
        int result;
        if (PackedEvents)
        {
            var e = new EpollEvent(events, data);
            result = Libc.EpollCtl(Handle, operation, fd, &e);
        }
        else
        {
            var e = new AlignedEpollEvent { Events = events, Data = data };
            result = Libc.EpollCtl(Handle, operation, fd, &e);
        }
        if (result != 0)
            throw LinuxException.FromLastError($"{name} fd {fd}");
    }

    public void Dispose() => Handle.Dispose();
}
