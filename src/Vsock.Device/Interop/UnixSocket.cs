using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Vsock.Device.Interop;

/// <summary>
/// An AF_UNIX stream socket with SCM_RIGHTS fd passing: the vhost-user control channel (QEMU sends
/// memfds and eventfds with its messages) and the host side of the unix-socket vsock backend, whose
/// SEQPACKET streams use AF_UNIX SOCK_SEQPACKET sockets (<see cref="SocketKind"/>).
/// System.Net.Sockets cannot receive ancillary fds, hence this thin wrapper over sendmsg/recvmsg.
/// </summary>
public sealed class UnixSocket : IDisposable
{
    private UnixSocket(SafeFileHandle handle)
    {
        Handle = handle;
    }

    public SafeFileHandle Handle { get; }

    public int Fd => (int)Handle.DangerousGetHandle();

    /// <summary>Wraps a connected or listening AF_UNIX stream socket; takes ownership of <paramref name="handle"/>.</summary>
    public static UnixSocket FromHandle(SafeFileHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        if (handle.IsInvalid || handle.IsClosed)
            throw new ArgumentException("the socket handle is invalid or closed", nameof(handle));
        return new UnixSocket(handle);
    }

    /// <summary>
    /// Binds and listens on <paramref name="path"/>. A socket file left there by an earlier run is
    /// removed first; anything else at that path (a regular file, a directory) is left alone and the
    /// bind fails with EADDRINUSE, so a typo in a path never deletes a user's file.
    /// </summary>
    public static UnixSocket Listen(string path, int backlog = 16, SocketKind kind = SocketKind.Stream)
    {
        var address = MakeAddress(path, out var addressLength);
        if (FileStatus.OfPath(path) is { IsSocket: true } && Libc.Unlink(path) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno != Errno.ENOENT) // lost a race with another cleaner: fine
                throw new LinuxException(errno, $"unlink stale socket {path}");
        }
        var socket = NewSocket(kind);
        try
        {
            unsafe
            {
                if (Libc.Bind(socket.Handle, &address, addressLength) != 0)
                    throw LinuxException.FromLastError($"bind {path}");
            }
            if (Libc.Listen(socket.Handle, backlog) != 0)
                throw LinuxException.FromLastError($"listen {path}");
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Connects to <paramref name="path"/>. A listener of the other <see cref="SocketKind"/> refuses with
    /// EPROTOTYPE (a <see cref="LinuxException"/>), at once.
    /// </summary>
    /// <param name="timeout">
    /// How long to wait for room in a full accept backlog (SO_SNDTIMEO bounds a blocking AF_UNIX connect; the
    /// kernel then answers EAGAIN). Null: as long as it takes, which for a listener that never accepts is for ever.
    /// </param>
    public static UnixSocket Connect(string path, SocketKind kind = SocketKind.Stream, TimeSpan? timeout = null)
    {
        var address = MakeAddress(path, out var addressLength);
        var socket = NewSocket(kind);
        try
        {
            if (timeout is { } limit)
                SetSendTimeout(socket.Handle, limit);
            var interrupted = false;
            while (true)
            {
                int result;
                unsafe
                {
                    result = Libc.Connect(socket.Handle, &address, addressLength);
                }
                if (result == 0)
                    return socket;
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.EINTR)
                {
                    interrupted = true;
                    continue;
                }
                // After an interrupted connect the kernel may have finished it behind our back.
                if (interrupted && errno == Errno.EISCONN)
                    return socket;
                throw new LinuxException(errno, $"connect {path}");
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Connects a non-blocking socket to <paramref name="path"/> without waiting. A unix stream connect completes at
    /// once or fails at once; the one case that would wait is a listener whose backlog is full, reported here as
    /// <see cref="Errno.EAGAIN"/> (the caller then connects from a thread that may block). Returns the connected,
    /// non-blocking socket, or null with the errno.
    /// </summary>
    public static UnixSocket? TryConnectNonBlocking(string path, SocketKind kind, out int errno)
    {
        var address = MakeAddress(path, out var addressLength);
        var fd = Libc.Socket(Libc.AF_UNIX, kind.SocketType() | Libc.SOCK_CLOEXEC | Libc.SOCK_NONBLOCK, 0);
        if (fd < 0)
            throw LinuxException.FromLastError("socket AF_UNIX");
        var socket = new UnixSocket(new SafeFileHandle(fd, ownsHandle: true));
        while (true)
        {
            int result;
            unsafe
            {
                result = Libc.Connect(socket.Handle, &address, addressLength);
            }
            errno = result == 0 ? 0 : Marshal.GetLastPInvokeError();
            if (errno == Errno.EINTR)
                continue;
            if (errno == 0)
                return socket;
            socket.Dispose();
            return null;
        }
    }

    private static unsafe void SetSendTimeout(SafeHandle socket, TimeSpan timeout)
    {
        var microseconds = Math.Max(1L, (long)(timeout.TotalMilliseconds * 1000));
        var timeval = stackalloc long[2];
        timeval[0] = microseconds / 1_000_000;
        timeval[1] = microseconds % 1_000_000;
        if (Libc.SetSockOpt(socket, Libc.SOL_SOCKET, Libc.SO_SNDTIMEO, timeval, 2 * sizeof(long)) != 0)
            throw LinuxException.FromLastError("setsockopt SO_SNDTIMEO");
    }

    /// <summary>A connected pair (socketpair), both blocking and close-on-exec.</summary>
    public static unsafe (UnixSocket, UnixSocket) Pair(SocketKind kind = SocketKind.Stream)
    {
        var fds = stackalloc int[2];
        if (Libc.SocketPair(Libc.AF_UNIX, kind.SocketType() | Libc.SOCK_CLOEXEC, 0, fds) != 0)
            throw LinuxException.FromLastError("socketpair");
        return (new UnixSocket(new SafeFileHandle(fds[0], ownsHandle: true)),
                new UnixSocket(new SafeFileHandle(fds[1], ownsHandle: true)));
    }

    /// <summary>Accepts one connection; null when none is pending on a non-blocking listener (EAGAIN).</summary>
    public unsafe UnixSocket? Accept(bool nonBlocking = false)
    {
        var flags = Libc.SOCK_CLOEXEC | (nonBlocking ? Libc.SOCK_NONBLOCK : 0);
        while (true)
        {
            var fd = Libc.Accept4(Handle, null, null, flags);
            if (fd >= 0)
                return new UnixSocket(new SafeFileHandle(fd, ownsHandle: true));
            var errno = Marshal.GetLastPInvokeError();
            if (errno is Errno.EINTR or Errno.ECONNABORTED) // ECONNABORTED: that client gave up; try the next
                continue;
            if (errno == Errno.EAGAIN)
                return null;
            throw new LinuxException(errno, "accept4");
        }
    }

    public void SetNonBlocking(bool on)
    {
        var flags = Libc.Fcntl(Handle, Libc.F_GETFL, 0);
        if (flags < 0)
            throw LinuxException.FromLastError("fcntl F_GETFL");
        var wanted = on ? flags | Libc.O_NONBLOCK : flags & ~Libc.O_NONBLOCK;
        if (wanted != flags && Libc.Fcntl(Handle, Libc.F_SETFL, wanted) != 0)
            throw LinuxException.FromLastError("fcntl F_SETFL");
    }

    /// <summary>
    /// recvmsg into <paramref name="buffer"/>, collecting any SCM_RIGHTS fds (at most
    /// <see cref="ControlMessage.MaxFds"/>) into <paramref name="fds"/> as owned handles, close-on-exec.
    /// With <paramref name="fds"/> null, fds that arrive anyway are closed.
    /// Linux hands a message's fds to the first read that touches any of its bytes, and such a read
    /// ends at that message's last byte (it may also include plain bytes queued before it); so a
    /// reader that takes a vhost-user header on its own gets the message's fds with the header.
    /// Returns the bytes read, 0 at end of stream, -1 when nothing is available yet (EAGAIN: a
    /// non-blocking socket, or <paramref name="dontWait"/>).
    /// </summary>
    /// <exception cref="InvalidDataException">
    /// The peer sent more fds than fit (MSG_CTRUNC). The fds that did arrive are closed; the bytes of
    /// that message are consumed, so the stream is out of step and the connection should be dropped.
    /// </exception>
    public unsafe int Receive(Span<byte> buffer, List<SafeFileHandle>? fds, bool dontWait = false)
    {
        if (buffer.IsEmpty)
            throw new ArgumentException("a zero-length receive cannot tell data from end of stream", nameof(buffer));
        // ulong elements: the control buffer must be aligned like a cmsghdr.
        var control = stackalloc ulong[ControlMessage.MaxFdsSpace / sizeof(ulong)];
        var flags = Libc.MSG_CMSG_CLOEXEC | (dontWait ? Libc.MSG_DONTWAIT : 0);
        fixed (byte* data = buffer)
        {
            var iov = new IoVec { Base = data, Length = (nuint)buffer.Length };
            MsgHdr message;
            nint received;
            while (true)
            {
                message = new MsgHdr
                {
                    Iov = &iov,
                    IovLength = 1,
                    Control = control,
                    ControlLength = ControlMessage.MaxFdsSpace,
                };
                received = Libc.RecvMsg(Handle, &message, flags);
                if (received >= 0)
                    break;
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.EINTR)
                    continue;
                if (errno == Errno.EAGAIN)
                    return -1;
                throw new LinuxException(errno, "recvmsg");
            }
            CollectFds(&message, fds);
            return (int)received;
        }
    }

    /// <summary>
    /// Sends all of <paramref name="data"/> on a blocking socket (sendmsg, MSG_NOSIGNAL: a vanished peer
    /// is an EPIPE exception, not a process-killing SIGPIPE). <paramref name="fds"/> travel as SCM_RIGHTS
    /// with the first bytes; the caller keeps its own copies open. On a non-blocking socket whose buffer
    /// is full this throws (EAGAIN) rather than wait: code that must not block uses <see cref="TrySend"/>.
    /// </summary>
    public void Send(ReadOnlySpan<byte> data, ReadOnlySpan<int> fds = default)
    {
        var sent = TrySend(data, fds, dontWait: false);
        if (sent < data.Length)
            throw new LinuxException(Errno.EAGAIN, $"sendmsg: {sent} of {data.Length} bytes sent on a non-blocking socket whose buffer is full");
    }

    /// <summary>
    /// Sends as much of <paramref name="data"/> as the socket takes without waiting (MSG_DONTWAIT, whatever
    /// the socket's own mode; MSG_NOSIGNAL) and returns the bytes sent: fewer than asked, possibly 0, when
    /// the send buffer is full (wait for EPOLLOUT and send the rest). <paramref name="fds"/> go with the
    /// first byte sent. A vanished peer throws (EPIPE, ECONNRESET).
    /// </summary>
    public int TrySend(ReadOnlySpan<byte> data, ReadOnlySpan<int> fds = default) => TrySend(data, fds, dontWait: true);

    private unsafe int TrySend(ReadOnlySpan<byte> data, ReadOnlySpan<int> fds, bool dontWait)
    {
        if (fds.Length > ControlMessage.MaxFds)
            throw new ArgumentException($"at most {ControlMessage.MaxFds} fds per message", nameof(fds));
        if (data.IsEmpty)
        {
            if (!fds.IsEmpty)
                throw new ArgumentException("SCM_RIGHTS needs at least one byte of data to ride on", nameof(data));
            return 0;
        }
        var control = stackalloc ulong[ControlMessage.MaxFdsSpace / sizeof(ulong)];
        var controlLength = 0;
        if (!fds.IsEmpty)
        {
            var header = (CMsgHdr*)control;
            header->Length = (nuint)ControlMessage.Len(fds.Length * sizeof(int));
            header->Level = Libc.SOL_SOCKET;
            header->Type = Libc.SCM_RIGHTS;
            fds.CopyTo(new Span<int>(ControlMessage.Data(header), fds.Length));
            controlLength = ControlMessage.Space(fds.Length * sizeof(int));
        }
        var flags = Libc.MSG_NOSIGNAL | (dontWait ? Libc.MSG_DONTWAIT : 0);
        fixed (byte* start = data)
        {
            var sent = 0;
            while (sent < data.Length)
            {
                var iov = new IoVec { Base = start + sent, Length = (nuint)(data.Length - sent) };
                var message = new MsgHdr
                {
                    Iov = &iov,
                    IovLength = 1,
                    Control = controlLength == 0 ? null : control,
                    ControlLength = (nuint)controlLength,
                };
                var result = Libc.SendMsg(Handle, &message, flags);
                if (result >= 0)
                {
                    sent += (int)result;
                    if (result > 0)
                        controlLength = 0; // the fds went with the bytes just sent
                    continue;
                }
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.EINTR)
                    continue;
                if (errno == Errno.EAGAIN)
                    return sent;
                throw new LinuxException(errno, "sendmsg");
            }
            return sent;
        }
    }

    /// <summary>shutdown(SHUT_RDWR): wakes a thread blocked in <see cref="Receive"/> (it sees end of stream).</summary>
    public void Shutdown()
    {
        if (Libc.Shutdown(Handle, Libc.SHUT_RDWR) == 0)
            return;
        var errno = Marshal.GetLastPInvokeError();
        if (errno != Errno.ENOTCONN) // the peer already went: nothing left to shut
            throw new LinuxException(errno, "shutdown");
    }

    /// <summary>
    /// Hands the fd to a <see cref="System.Net.Sockets.Socket"/>, which owns it from then on (this object is
    /// left closed-without-closing). The Socket is an owner only: the I/O goes through <see cref="StreamIo"/>,
    /// so the runtime's socket engine never registers the fd and never wakes for its events.
    /// </summary>
    public System.Net.Sockets.Socket ToSocket()
    {
        var fd = Handle.DangerousGetHandle();
        Handle.SetHandleAsInvalid();
        var owner = new System.Net.Sockets.SafeSocketHandle(fd, ownsHandle: true);
        try
        {
            return new System.Net.Sockets.Socket(owner);
        }
        catch
        {
            owner.Dispose();
            throw;
        }
    }

    public void Dispose() => Handle.Dispose();

    private static unsafe void CollectFds(MsgHdr* message, List<SafeFileHandle>? fds)
    {
        var firstAdded = fds?.Count ?? 0;
        try
        {
            for (var header = ControlMessage.FirstHeader(message); header != null; header = ControlMessage.NextHeader(message, header))
            {
                if (!ControlMessage.FitsInBuffer(message, header))
                    break;
                if (header->Level != Libc.SOL_SOCKET || header->Type != Libc.SCM_RIGHTS)
                    continue;
                var payload = header->Length - (nuint)ControlMessage.Len(0);
                var count = (int)(payload / sizeof(int));
                var received = (int*)ControlMessage.Data(header);
                for (var i = 0; i < count; i++)
                {
                    // Own every fd at once, even ones we will close: nothing may leak.
                    var handle = new SafeFileHandle(received[i], ownsHandle: true);
                    if (fds is null)
                        handle.Dispose();
                    else
                        fds.Add(handle);
                }
            }
            if ((message->Flags & Libc.MSG_CTRUNC) != 0)
                throw new InvalidDataException(
                    $"the peer sent more than {ControlMessage.MaxFds} file descriptors in one message (MSG_CTRUNC)");
        }
        catch
        {
            if (fds is not null)
            {
                for (var i = firstAdded; i < fds.Count; i++)
                    fds[i].Dispose();
                fds.RemoveRange(firstAdded, fds.Count - firstAdded);
            }
            throw;
        }
    }

    private static UnixSocket NewSocket(SocketKind kind)
    {
        var fd = Libc.Socket(Libc.AF_UNIX, kind.SocketType() | Libc.SOCK_CLOEXEC, 0);
        if (fd < 0)
            throw LinuxException.FromLastError("socket AF_UNIX");
        return new UnixSocket(new SafeFileHandle(fd, ownsHandle: true));
    }

    private static unsafe SockAddrUn MakeAddress(string path, out uint length)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var byteCount = Encoding.UTF8.GetByteCount(path);
        if (byteCount >= SockAddrUn.PathCapacity) // room for the terminating NUL
            throw new ArgumentException(
                $"unix socket path is {byteCount} bytes; the limit is {SockAddrUn.PathCapacity - 1}: {path}", nameof(path));
        if (path.Contains('\0'))
            throw new ArgumentException("unix socket path contains a NUL character", nameof(path));
        var address = new SockAddrUn { Family = Libc.AF_UNIX };
        Encoding.UTF8.GetBytes(path, new Span<byte>(address.Path, SockAddrUn.PathCapacity));
        length = (uint)(sizeof(ushort) + byteCount + 1);
        return address;
    }
}
