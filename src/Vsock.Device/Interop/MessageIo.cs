using System.Runtime.InteropServices;

namespace Vsock.Device.Interop;

/// <summary>
/// Non-blocking message I/O on a connected SOCK_SEQPACKET socket (unix or AF_VSOCK), the SEQPACKET twin of
/// <see cref="StreamIo"/>: one sendmsg is one message (all of it or nothing: EAGAIN), one recvmsg takes one whole
/// message and drops what does not fit (MSG_TRUNC). Every call uses MSG_DONTWAIT and returns a count or a negated
/// errno, as <see cref="StreamIo"/> does.
/// </summary>
public static class MessageIo
{
    /// <summary>-EAGAIN: no message queued, or no room for this one, right now.</summary>
    public const int WouldBlock = StreamIo.WouldBlock;

    /// <summary>-EOPNOTSUPP from <see cref="PeekLength"/>: the socket cannot peek.</summary>
    public const int PeekUnsupported = -Errno.EOPNOTSUPP;

    /// <summary>
    /// What AF_VSOCK SEQPACKET before Linux 6.4 answers a peek with: the transport's EOPNOTSUPP comes out of
    /// af_vsock.c's __vsock_seqpacket_recvmsg as -ENOMEM (any negative record length does), and nothing is taken.
    /// </summary>
    public const int VsockPeekUnsupported = -Errno.ENOMEM;

    /// <summary>
    /// The length of the next message without taking it: recv(MSG_PEEK | MSG_TRUNC) returns the message's real
    /// length on Linux (unix SEQPACKET; AF_VSOCK SEQPACKET from 6.4, earlier kernels fail it: <see cref="VsockPeekUnsupported"/>). The buffer
    /// is one byte, not none: AF_VSOCK answers a zero-length receive with 0 before it looks at anything. 0 is an
    /// empty message or end of stream (<see cref="PeerShutDown"/> and <see cref="QueuedBytes"/> tell which).
    /// </summary>
    /// <returns>The length, <see cref="WouldBlock"/>, <see cref="PeekUnsupported"/>, or another negated errno.</returns>
    public static unsafe int PeekLength(SafeHandle socket)
    {
        byte one;
        while (true)
        {
            var n = Libc.Recv(socket, &one, 1, Libc.MSG_DONTWAIT | Libc.MSG_PEEK | Libc.MSG_TRUNC);
            if (n >= 0)
                return (int)n;
            var errno = Marshal.GetLastPInvokeError();
            if (errno != Errno.EINTR)
                return -errno;
        }
    }

    /// <summary>
    /// One recvmsg: the next message into <paramref name="count"/> iovecs. <paramref name="messageFlags"/> is the
    /// kernel's msg_flags (MSG_TRUNC when the message was longer than the iovecs, MSG_EOR when the sender ended a
    /// record: AF_VSOCK reports it, unix sockets never do).
    /// </summary>
    /// <returns>Bytes read (0 = an empty message or end of stream), <see cref="WouldBlock"/>, or another negated errno.</returns>
    internal static unsafe int Receive(SafeHandle socket, IoVec* iov, int count, out int messageFlags)
    {
        while (true)
        {
            var message = new MsgHdr { Iov = iov, IovLength = (nuint)count };
            var n = Libc.RecvMsg(socket, &message, Libc.MSG_DONTWAIT);
            if (n >= 0)
            {
                messageFlags = message.Flags;
                return (int)n;
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno != Errno.EINTR)
            {
                messageFlags = 0;
                return -errno;
            }
        }
    }

    /// <summary>The next message into <paramref name="buffer"/>; see <see cref="Receive(SafeHandle, IoVec*, int, out int)"/>.</summary>
    public static unsafe int Receive(SafeHandle socket, Span<byte> buffer, out int messageFlags)
    {
        fixed (byte* p = buffer)
        {
            var iov = new IoVec { Base = p, Length = (nuint)buffer.Length };
            return Receive(socket, &iov, 1, out messageFlags);
        }
    }

    /// <summary>recvmsg's MSG_TRUNC: the message was longer than the buffer.</summary>
    public const int Truncated = Libc.MSG_TRUNC;

    /// <summary>recvmsg's MSG_EOR: the sender ended a record (AF_VSOCK SEQPACKET reports it).</summary>
    public const int EndOfRecord = Libc.MSG_EOR;

    /// <summary>Takes the next message off the socket and drops it (an empty one, say).</summary>
    /// <returns>The message's length, <see cref="WouldBlock"/>, or another negated errno.</returns>
    public static unsafe int Discard(SafeHandle socket)
    {
        byte one;
        while (true)
        {
            var n = Libc.Recv(socket, &one, 1, Libc.MSG_DONTWAIT | Libc.MSG_TRUNC);
            if (n >= 0)
                return (int)n;
            var errno = Marshal.GetLastPInvokeError();
            if (errno != Errno.EINTR)
                return -errno;
        }
    }

    /// <summary>
    /// One sendmsg of <paramref name="count"/> iovecs as one message, MSG_EOR with <paramref name="endOfRecord"/>
    /// (AF_VSOCK carries it; unix sockets accept it and drop it).
    /// </summary>
    /// <returns>The message's length, <see cref="WouldBlock"/> (nothing was sent), or another negated errno
    /// (EMSGSIZE: larger than the socket can ever take).</returns>
    internal static unsafe int Send(SafeHandle socket, IoVec* iov, int count, bool endOfRecord)
    {
        var flags = Libc.MSG_DONTWAIT | Libc.MSG_NOSIGNAL | (endOfRecord ? Libc.MSG_EOR : 0);
        while (true)
        {
            var message = new MsgHdr { Iov = iov, IovLength = (nuint)count };
            var n = Libc.SendMsg(socket, &message, flags);
            if (n >= 0)
                return (int)n;
            var errno = Marshal.GetLastPInvokeError();
            if (errno != Errno.EINTR)
                return -errno;
        }
    }

    /// <summary>Sends <paramref name="message"/> as one message.</summary>
    public static unsafe int Send(SafeHandle socket, ReadOnlySpan<byte> message, bool endOfRecord = false)
    {
        fixed (byte* p = message)
        {
            var iov = new IoVec { Base = p, Length = (nuint)message.Length };
            return Send(socket, &iov, 1, endOfRecord);
        }
    }

    /// <summary>
    /// Whether the peer shut its write side (POLLRDHUP), asked now rather than from an edge: after a peek of 0 it
    /// tells end of stream (shut) from an empty message (not shut: EOF needs the shutdown, which is permanent).
    /// </summary>
    public static bool PeerShutDown(SafeHandle socket) => (PollNow(socket, Libc.POLLRDHUP) & Libc.POLLRDHUP) != 0;

    /// <summary>
    /// Bytes queued for reading in all messages (FIONREAD; unix SEQPACKET sums every queued message): with a peek
    /// of 0 from a peer that shut down, more than 0 means an empty message stands before others.
    /// </summary>
    public static unsafe int QueuedBytes(SafeHandle socket)
    {
        var bytes = 0;
        if (Libc.Ioctl(socket, Libc.FIONREAD, &bytes) != 0)
            throw LinuxException.FromLastError("ioctl FIONREAD");
        return bytes;
    }

    /// <summary>Whether a send could take at least one byte now (POLLOUT), asked now rather than from an edge.</summary>
    public static bool Writable(SafeHandle socket) => (PollNow(socket, Libc.POLLOUT) & Libc.POLLOUT) != 0;

    /// <summary>
    /// Asks for a send buffer of <paramref name="bytes"/> (the kernel doubles the request and caps it at
    /// net.core.wmem_max) and returns the largest message a unix SEQPACKET socket then sends: sk_sndbuf - 32 (Linux
    /// af_unix refuses longer ones with EMSGSIZE).
    /// </summary>
    public static unsafe int SetSendBuffer(SafeHandle socket, int bytes)
    {
        var value = bytes;
        if (Libc.SetSockOpt(socket, Libc.SOL_SOCKET, Libc.SO_SNDBUF, &value, sizeof(int)) != 0)
            throw LinuxException.FromLastError("setsockopt SO_SNDBUF");
        var length = (uint)sizeof(int);
        if (Libc.GetSockOpt(socket, Libc.SOL_SOCKET, Libc.SO_SNDBUF, &value, &length) != 0)
            throw LinuxException.FromLastError("getsockopt SO_SNDBUF");
        return Math.Max(0, value - UnixMessageOverhead);
    }

    /// <summary>af_unix: a datagram or SEQPACKET message may be at most sk_sndbuf - 32 bytes.</summary>
    private const int UnixMessageOverhead = 32;

    private static unsafe short PollNow(SafeHandle socket, short events)
    {
        var added = false;
        try
        {
            socket.DangerousAddRef(ref added);
            var entry = new PollFd { Fd = (int)socket.DangerousGetHandle(), Events = events };
            while (true)
            {
                var result = Libc.Poll(&entry, 1, 0);
                if (result >= 0)
                    return result == 0 ? (short)0 : entry.ReturnedEvents;
                var errno = Marshal.GetLastPInvokeError();
                if (errno != Errno.EINTR)
                    throw new LinuxException(errno, "poll");
            }
        }
        finally
        {
            if (added)
                socket.DangerousRelease();
        }
    }
}
