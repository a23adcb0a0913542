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

    /// <summary>The errno name of a negated result, for logs.</summary>
    public static string Describe(int result) =>
        result >= 0 ? $"{result} bytes" : $"{Marshal.GetPInvokeErrorMessage(-result)} (errno {-result})";
}
