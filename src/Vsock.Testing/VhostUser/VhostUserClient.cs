using System.Buffers.Binary;
using System.Diagnostics;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Interop;

namespace Vsock.Testing.VhostUser;

/// <summary>
/// The VMM end of a vhost-user control socket: message framing (12-byte host-endian header, then
/// the payload; fds as SCM_RIGHTS with the message), strict reply validation the way QEMU does it,
/// and raw access for tests that play a hostile VMM. Not thread-safe: one caller at a time.
/// </summary>
public sealed class VhostUserClient : IDisposable
{
    public const int HeaderSize = 12;

    /// <summary>Replies larger than this are treated as a protocol violation (QEMU's own messages stay far below).</summary>
    public const int MaxReplyPayload = 64 * 1024;

    private readonly UnixSocket _socket;
    private bool _closed;

    private VhostUserClient(UnixSocket socket)
    {
        _socket = socket;
    }

    /// <summary>
    /// Connects to the back end's socket, retrying while it does not exist yet or refuses
    /// (the daemon may still be starting) until <paramref name="waitForSocket"/> has passed.
    /// </summary>
    public static VhostUserClient Connect(string path, TimeSpan waitForSocket)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new VhostUserClient(UnixSocket.Connect(path));
            }
            catch (LinuxException e) when (e.Errno is Errno.ENOENT or Errno.ECONNREFUSED && clock.Elapsed < waitForSocket)
            {
                Thread.Sleep(10);
            }
        }
    }

    public bool IsClosed => _closed;

    /// <summary>Sends one message: header (request, version 1 [+ NEED_REPLY], size) and payload, fds attached.</summary>
    public void Send(uint request, ReadOnlySpan<byte> payload, ReadOnlySpan<int> fds = default, bool needReply = false)
    {
        var flags = VhostUserFlags.Version | (needReply ? VhostUserFlags.NeedReply : 0);
        Span<byte> message = payload.Length <= 512 ? stackalloc byte[HeaderSize + payload.Length] : new byte[HeaderSize + payload.Length];
        WriteHeader(message, request, flags, (uint)payload.Length);
        payload.CopyTo(message[HeaderSize..]);
        _socket.Send(message, fds);
    }

    /// <summary>Sends arbitrary bytes (a lying size field, a truncated header, garbage), fds riding on the first byte.</summary>
    public void SendRaw(ReadOnlySpan<byte> bytes, ReadOnlySpan<int> fds = default) => _socket.Send(bytes, fds);

    public static void WriteHeader(Span<byte> destination, uint request, uint flags, uint size)
    {
        // vhost-user headers are host-endian; every supported host is little-endian.
        BinaryPrimitives.WriteUInt32LittleEndian(destination, request);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], size);
    }

    /// <summary>
    /// Reads one message. Null when the back end closed the connection (end of stream or reset).
    /// Fds that arrive with it are closed. Throws <see cref="TimeoutException"/> after <paramref name="timeout"/>.
    /// </summary>
    public VhostUserReply? Receive(TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        Span<byte> header = stackalloc byte[HeaderSize];
        if (!ReadExactly(header, deadline))
            return null;
        var request = BinaryPrimitives.ReadUInt32LittleEndian(header);
        var flags = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        var size = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        if (size > MaxReplyPayload)
            throw new VhostUserProtocolException($"reply to request {request} claims {size} payload bytes");
        var payload = new byte[size];
        if (size > 0 && !ReadExactly(payload, deadline))
            throw new VhostUserProtocolException($"back end hung up inside the reply to request {request}");
        return new VhostUserReply(request, flags, payload);
    }

    /// <summary>
    /// Sends <paramref name="request"/> and reads its reply, which must be for the same request, carry
    /// exactly REPLY|version 1 and, when <paramref name="expectedSize"/> is given, have that size.
    /// </summary>
    public byte[] Call(uint request, ReadOnlySpan<byte> payload, TimeSpan timeout, int? expectedSize, ReadOnlySpan<int> fds = default, bool needReply = false)
    {
        try
        {
            Send(request, payload, fds, needReply);
        }
        catch (LinuxException e)
        {
            throw new VhostUserProtocolException($"sending request {request} failed: {e.Message}", e);
        }
        VhostUserReply? reply;
        try
        {
            reply = Receive(timeout);
        }
        catch (LinuxException e)
        {
            throw new VhostUserProtocolException($"reading the reply to request {request} failed: {e.Message}", e);
        }
        if (reply is null)
            throw new VhostUserProtocolException($"back end closed the connection instead of answering request {request}");
        if (!reply.HasValidReplyFlags)
            throw new VhostUserProtocolException($"reply to request {request} has flags 0x{reply.Flags:x}, expected exactly 0x5 (REPLY|1)");
        if (reply.Request != request)
            throw new VhostUserProtocolException($"reply is for request {reply.Request}, expected {request}");
        if (expectedSize is { } size && reply.Payload.Length != size)
            throw new VhostUserProtocolException($"reply to request {request} has {reply.Payload.Length} bytes, expected {size}");
        return reply.Payload;
    }

    /// <summary>A request whose reply is one u64 (GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM).</summary>
    public ulong CallU64(uint request, TimeSpan timeout) =>
        BinaryPrimitives.ReadUInt64LittleEndian(Call(request, default, timeout, sizeof(ulong)));

    /// <summary>
    /// Reads and drops whatever arrives until the back end hangs up (true) or <paramref name="timeout"/>
    /// passes with the connection still open (false).
    /// </summary>
    public bool WaitForHangup(TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        Span<byte> sink = stackalloc byte[4096];
        while (true)
        {
            var remainingMs = RemainingMs(deadline);
            if (remainingMs == 0)
                return false;
            if (Poll.WaitReadable(_socket.Handle, remainingMs) == 0)
                return false;
            try
            {
                if (_socket.Receive(sink, null, dontWait: true) == 0)
                    return true;
            }
            catch (LinuxException e) when (e.Errno == Errno.ECONNRESET)
            {
                return true;
            }
        }
    }

    /// <summary>
    /// True when the back end closes the connection within <paramref name="timeout"/>, seen with poll
    /// (POLLHUP / POLLRDHUP) so that nothing is read: a VMM that leaves its replies unread.
    /// </summary>
    public unsafe bool WaitForHangupWithoutReading(TimeSpan timeout)
    {
        const short PollErr = 0x8, PollHup = 0x10, PollRdHup = 0x2000;
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        var added = false;
        try
        {
            _socket.Handle.DangerousAddRef(ref added);
            while (true)
            {
                var remainingMs = RemainingMs(deadline);
                var entry = new PollFd { Fd = _socket.Fd, Events = PollRdHup };
                var result = Libc.Poll(&entry, 1, remainingMs);
                if (result > 0 && (entry.ReturnedEvents & (PollErr | PollHup | PollRdHup)) != 0)
                    return true;
                if (result < 0 && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() != Errno.EINTR)
                    throw new LinuxException(System.Runtime.InteropServices.Marshal.GetLastPInvokeError(), "poll");
                if (remainingMs == 0 || (result == 0 && RemainingMs(deadline) == 0))
                    return false;
            }
        }
        finally
        {
            if (added)
                _socket.Handle.DangerousRelease();
        }
    }

    /// <summary>Closes the socket at once, like a VMM that was SIGKILLed.</summary>
    public void Close()
    {
        _closed = true;
        _socket.Dispose();
    }

    public void Dispose() => Close();

    private bool ReadExactly(Span<byte> buffer, long deadline)
    {
        var done = 0;
        var fds = new List<SafeFileHandle>();
        try
        {
            while (done < buffer.Length)
            {
                var remainingMs = RemainingMs(deadline);
                if (remainingMs == 0 || Poll.WaitReadable(_socket.Handle, remainingMs) == 0)
                    throw new TimeoutException("the vhost-user back end did not answer in time");
                int n;
                try
                {
                    n = _socket.Receive(buffer[done..], fds, dontWait: true);
                }
                catch (LinuxException e) when (e.Errno == Errno.ECONNRESET)
                {
                    n = 0;
                }
                if (n == 0)
                {
                    if (done == 0)
                        return false;
                    throw new VhostUserProtocolException("back end hung up in the middle of a message");
                }
                if (n > 0)
                    done += n;
            }
            return true;
        }
        finally
        {
            // A back end has no business sending us fds in replies; never leak them.
            foreach (var fd in fds)
                fd.Dispose();
        }
    }

    private static int RemainingMs(long deadline)
    {
        var left = deadline - Stopwatch.GetTimestamp();
        if (left <= 0)
            return 0;
        return (int)Math.Max(1, Math.Min(int.MaxValue, left * 1000 / Stopwatch.Frequency));
    }
}
