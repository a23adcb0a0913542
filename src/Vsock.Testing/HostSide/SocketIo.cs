using System.Net.Sockets;
using System.Text;

namespace Vsock.Testing.HostSide;

/// <summary>
/// Exact reads and whole writes on a host socket. A test that wants N bytes must get N or fail saying how many it
/// got and why (EOF, or the deadline of its token), never hang on a short read or pass on a partial one.
/// </summary>
public static class SocketIo
{
    private const int Chunk = 64 * 1024;

    /// <summary>Sends all of <paramref name="data"/>, however the socket splits it.</summary>
    public static async Task SendAllAsync(this Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var n = await socket.SendAsync(data, SocketFlags.None, cancellationToken);
            data = data[n..];
        }
    }

    /// <summary>
    /// Reads exactly <paramref name="count"/> bytes. Throws <see cref="EndOfStreamException"/> at EOF before that, and
    /// <see cref="OperationCanceledException"/> (its message says how far it got) when the token is cancelled.
    /// </summary>
    public static async Task<byte[]> ReadExactlyAsync(this Socket socket, int count, CancellationToken cancellationToken)
    {
        var buffer = new byte[count];
        await socket.ReadExactlyAsync(buffer, cancellationToken);
        return buffer;
    }

    /// <summary>Fills <paramref name="buffer"/> exactly; throws as <see cref="ReadExactlyAsync(Socket, int, CancellationToken)"/>.</summary>
    public static async Task ReadExactlyAsync(this Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var done = 0;
        try
        {
            while (done < buffer.Length)
            {
                var n = await socket.ReceiveAsync(buffer[done..], SocketFlags.None, cancellationToken);
                if (n == 0)
                    throw new EndOfStreamException($"EOF after {done} of {buffer.Length} bytes");
                done += n;
            }
        }
        catch (OperationCanceledException e) when (e.CancellationToken == cancellationToken)
        {
            throw new OperationCanceledException($"cancelled after {done} of {buffer.Length} bytes", e, cancellationToken);
        }
    }

    /// <summary>Blocking: fills <paramref name="buffer"/> exactly; <see cref="EndOfStreamException"/> at EOF before that.</summary>
    public static void ReadExactly(this Socket socket, Span<byte> buffer)
    {
        var done = 0;
        while (done < buffer.Length)
        {
            var n = socket.Receive(buffer[done..]);
            if (n == 0)
                throw new EndOfStreamException($"EOF after {done} of {buffer.Length} bytes");
            done += n;
        }
    }

    /// <summary>Reads until EOF; returns everything.</summary>
    public static async Task<byte[]> ReadToEndAsync(this Socket socket, CancellationToken cancellationToken)
    {
        var all = new MemoryStream();
        var buffer = new byte[Chunk];
        while (true)
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (n == 0)
                return all.ToArray();
            all.Write(buffer, 0, n);
        }
    }

    /// <summary>
    /// Reads one <c>'\n'</c>-terminated line and returns it without the <c>'\n'</c>; null at EOF before the newline.
    /// One byte at a time, so nothing after the line is consumed. Longer than <paramref name="maxLength"/>: an
    /// <see cref="IOException"/>.
    /// </summary>
    public static async Task<string?> ReadLineAsync(this Socket socket, int maxLength, CancellationToken cancellationToken)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (line.Length <= maxLength)
        {
            if (await socket.ReceiveAsync(one, SocketFlags.None, cancellationToken) == 0)
                return null;
            if (one[0] == (byte)'\n')
                return line.ToString();
            line.Append((char)one[0]);
        }
        throw new IOException($"line longer than {maxLength} bytes: '{line}'");
    }

    /// <summary>True when the peer closes the socket (EOF or reset) within <paramref name="timeout"/>; what arrives before is discarded.</summary>
    public static async Task<bool> WaitForCloseAsync(this Socket socket, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[4096];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token) > 0)
            {
            }
            return true;
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
