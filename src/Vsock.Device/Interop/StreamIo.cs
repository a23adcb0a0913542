using System.Runtime.InteropServices;

namespace Vsock.Device.Interop;

/// <summary>
/// Non-blocking reads and writes on a connected stream socket (unix or AF_VSOCK) whose readiness an
/// <see cref="Threading.EventLoop"/> reports. Every call uses MSG_DONTWAIT, so it never blocks whatever
/// the fd's own mode is, and returns a count or a negated errno instead of throwing: EAGAIN and a reset
/// peer are the normal life of a host socket, not exceptions. EINTR is retried.
/// </summary>
public static class StreamIo
{
    /// <summary>-EAGAIN: nothing to read, or no room to write, right now.</summary>
    public const int WouldBlock = -Errno.EAGAIN;

    /// <returns>Bytes read (0 = the peer shut its write side), <see cref="WouldBlock"/>, or another negated errno.</returns>
    public static unsafe int Receive(SafeHandle socket, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var n = Libc.Recv(socket, p, (nuint)buffer.Length, Libc.MSG_DONTWAIT);
                if (n >= 0)
                    return (int)n;
                var errno = Marshal.GetLastPInvokeError();
                if (errno != Errno.EINTR)
                    return -errno;
            }
        }
    }

    /// <returns>Bytes written (possibly fewer than asked), <see cref="WouldBlock"/>, or another negated errno (EPIPE: the peer is gone).</returns>
    public static unsafe int Send(SafeHandle socket, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            while (true)
            {
                var n = Libc.SendBytes(socket, p, (nuint)data.Length, Libc.MSG_DONTWAIT | Libc.MSG_NOSIGNAL);
                if (n >= 0)
                    return (int)n;
                var errno = Marshal.GetLastPInvokeError();
                if (errno != Errno.EINTR)
                    return -errno;
            }
        }
    }

    /// <summary>Most segments one gathered write takes (a sendmsg iovec on the stack).</summary>
    public const int MaxSegments = 16;

    [ThreadStatic]
    private static GCHandle[]? t_pins;

    /// <summary>
    /// Writes <paramref name="segments"/> (at most <see cref="MaxSegments"/>) with one sendmsg: a guest
    /// streaming 4 KiB packets costs one system call per batch instead of one per packet.
    /// </summary>
    /// <returns>Bytes written (possibly fewer than asked), <see cref="WouldBlock"/>, or another negated errno.</returns>
    public static unsafe int Send(SafeHandle socket, ReadOnlySpan<ArraySegment<byte>> segments)
    {
        if (segments.Length > MaxSegments)
            throw new ArgumentOutOfRangeException(nameof(segments), $"at most {MaxSegments} segments");
        if (segments.Length == 1)
            return Send(socket, segments[0].AsSpan());
        var pins = t_pins ??= new GCHandle[MaxSegments];
        var iov = stackalloc IoVec[MaxSegments];
        var pinned = 0;
        try
        {
            for (; pinned < segments.Length; pinned++)
            {
                var segment = segments[pinned];
                pins[pinned] = GCHandle.Alloc(segment.Array, GCHandleType.Pinned);
                iov[pinned].Base = (byte*)pins[pinned].AddrOfPinnedObject() + segment.Offset;
                iov[pinned].Length = (nuint)segment.Count;
            }
            var message = new MsgHdr { Iov = iov, IovLength = (nuint)segments.Length };
            while (true)
            {
                var n = Libc.SendMsg(socket, &message, Libc.MSG_DONTWAIT | Libc.MSG_NOSIGNAL);
                if (n >= 0)
                    return (int)n;
                var errno = Marshal.GetLastPInvokeError();
                if (errno != Errno.EINTR)
                    return -errno;
            }
        }
        finally
        {
            for (var i = 0; i < pinned; i++)
                pins[i].Free();
        }
    }

    /// <summary>Most iovecs one vectored call takes (<see cref="ReceiveVector"/>, <see cref="SendVector"/>).</summary>
    public const int MaxVectorSegments = 64;

    /// <summary>
    /// One recvmsg into <paramref name="count"/> iovecs (scatter read). The host data path reads straight into
    /// guest RX buffers this way: one system call and one copy for many buffers.
    /// </summary>
    /// <returns>Bytes read (0 = end of stream), <see cref="WouldBlock"/>, or another negated errno.</returns>
    internal static unsafe int ReceiveVector(SafeHandle socket, IoVec* iov, int count, int flags = 0)
    {
        var message = new MsgHdr { Iov = iov, IovLength = (nuint)count };
        while (true)
        {
            var n = Libc.RecvMsg(socket, &message, Libc.MSG_DONTWAIT | flags);
            if (n >= 0)
                return (int)n;
            var errno = Marshal.GetLastPInvokeError();
            if (errno != Errno.EINTR)
                return -errno;
        }
    }

    /// <summary>
    /// One sendmsg of <paramref name="count"/> iovecs (gather write): guest TX payloads go to the host socket
    /// straight from guest memory this way.
    /// </summary>
    /// <returns>Bytes written (possibly fewer than asked), <see cref="WouldBlock"/>, or another negated errno.</returns>
    internal static unsafe int SendVector(SafeHandle socket, IoVec* iov, int count, int flags = 0)
    {
        var message = new MsgHdr { Iov = iov, IovLength = (nuint)count };
        while (true)
        {
            var n = Libc.SendMsg(socket, &message, Libc.MSG_DONTWAIT | Libc.MSG_NOSIGNAL | flags);
            if (n >= 0)
                return (int)n;
            var errno = Marshal.GetLastPInvokeError();
            if (errno != Errno.EINTR)
                return -errno;
        }
    }

    /// <summary>Reads without consuming (MSG_PEEK): the CONNECT line is taken off the socket only once it is whole.</summary>
    /// <returns>Bytes available (0 = end of stream), <see cref="WouldBlock"/>, or another negated errno.</returns>
    public static unsafe int Peek(SafeHandle socket, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var n = Libc.Recv(socket, p, (nuint)buffer.Length, Libc.MSG_DONTWAIT | Libc.MSG_PEEK);
                if (n >= 0)
                    return (int)n;
                var errno = Marshal.GetLastPInvokeError();
                if (errno != Errno.EINTR)
                    return -errno;
            }
        }
    }

    /// <summary>shutdown(SHUT_WR): the host peer reads end of stream. 0, or a negated errno (ENOTCONN when the peer is gone).</summary>
    public static int ShutdownWrite(SafeHandle socket) =>
        Libc.Shutdown(socket, Libc.SHUT_WR) == 0 ? 0 : -Marshal.GetLastPInvokeError();

    /// <summary>The errno name of a negated result, for logs.</summary>
    public static string Describe(int result) =>
        result >= 0 ? $"{result} bytes" : $"{Marshal.GetPInvokeErrorMessage(-result)} (errno {-result})";
}
