using System.Net.Sockets;
using System.Text;

namespace Vsock.Bench;

/// <summary>The host applications' side: unix sockets on the VM's uds-path (CONNECT/OK) and on uds-path_PORT.</summary>
internal static class HostSockets
{
    public static Socket NewUnix() => new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);

    /// <summary>Connects to <paramref name="udsPath"/>, sends <c>CONNECT port</c> and reads the <c>OK</c> line.</summary>
    public static async Task<Socket> ConnectAsync(string udsPath, uint port, CancellationToken cancellationToken)
    {
        var socket = NewUnix();
        try
        {
            // A full accept backlog makes a non-blocking unix connect fail with EAGAIN: wait and retry.
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(udsPath), cancellationToken);
                    break;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.TryAgain && attempt < 1000)
                {
                    socket.Dispose();
                    socket = NewUnix();
                    await Task.Delay(1, cancellationToken);
                }
            }
            await socket.SendAsync(Encoding.ASCII.GetBytes($"CONNECT {port}\n"), cancellationToken);
            var line = await ReadLineAsync(socket, cancellationToken);
            if (line != $"OK {port}\n")
                throw new IOException($"CONNECT {port} was answered with '{line.TrimEnd()}'");
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// <see cref="ConnectAsync"/> with synchronous calls only, for streams that then move data with
    /// blocking Send/Receive: a .NET socket that ever ran an async operation stays non-blocking and
    /// emulates blocking calls through the runtime's socket thread (an extra thread wake-up per call),
    /// which would be measured as the daemon's cost.
    /// </summary>
    public static Socket ConnectBlocking(string udsPath, uint port)
    {
        var socket = NewUnix();
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    socket.Connect(new UnixDomainSocketEndPoint(udsPath));
                    break;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.TryAgain && attempt < 1000)
                {
                    socket.Dispose();
                    socket = NewUnix();
                    Thread.Sleep(1);
                }
            }
            socket.Send(Encoding.ASCII.GetBytes($"CONNECT {port}\n"));
            var line = new StringBuilder();
            var one = new byte[1];
            while (socket.Receive(one) == 1)
            {
                line.Append((char)one[0]);
                if (one[0] == '\n')
                    break;
            }
            if (line.ToString() != $"OK {port}\n")
                throw new IOException($"CONNECT {port} was answered with '{line.ToString().TrimEnd()}'");
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Reads up to '\n' one byte at a time, so no stream data after the line is consumed.</summary>
    private static async Task<string> ReadLineAsync(Socket socket, CancellationToken cancellationToken)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (true)
        {
            if (await socket.ReceiveAsync(one, cancellationToken) == 0)
                return line.ToString();
            line.Append((char)one[0]);
            if (one[0] == '\n')
                return line.ToString();
        }
    }

    /// <summary>Listens where the daemon connects guest-initiated streams to host port <paramref name="port"/>.</summary>
    public static Socket Listen(string udsPath, uint port, int backlog = 512)
    {
        var path = $"{udsPath}_{port}";
        File.Delete(path);
        var socket = NewUnix();
        socket.Bind(new UnixDomainSocketEndPoint(path));
        socket.Listen(backlog);
        return socket;
    }

    /// <summary>Blocking: sends <paramref name="total"/> bytes in writes of <paramref name="writeSize"/>.</summary>
    public static void SendBlocking(Socket socket, long total, int writeSize)
    {
        var chunk = Pattern(writeSize);
        var left = total;
        while (left > 0)
        {
            var n = (int)Math.Min(left, writeSize);
            var sent = 0;
            while (sent < n)
                sent += socket.Send(chunk, sent, n - sent, SocketFlags.None);
            left -= n;
        }
    }

    /// <summary>Blocking: receives exactly <paramref name="total"/> bytes (64 KiB reads).</summary>
    public static void ReceiveBlocking(Socket socket, long total)
    {
        var buffer = new byte[64 * 1024];
        var left = total;
        while (left > 0)
        {
            var n = socket.Receive(buffer, 0, (int)Math.Min(left, buffer.Length), SocketFlags.None);
            if (n == 0)
                throw new EndOfStreamException($"EOF with {left} bytes still expected");
            left -= n;
        }
    }

    public static void ReceiveExactly(Socket socket, Span<byte> buffer)
    {
        var done = 0;
        while (done < buffer.Length)
        {
            var n = socket.Receive(buffer[done..]);
            if (n == 0)
                throw new EndOfStreamException();
            done += n;
        }
    }

    public static byte[] Pattern(int length)
    {
        var data = new byte[length];
        new Random(length).NextBytes(data);
        return data;
    }

    /// <summary>
    /// Runs <paramref name="body"/> on a dedicated thread (blocking socket loops), as a Task; the thread's
    /// CPU time goes to <paramref name="meter"/> when given.
    /// </summary>
    public static Task RunThread(string name, Action body, CpuMeter? meter = null)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                var cpu = meter is null ? TimeSpan.Zero : CpuClock.OfCurrentThread();
                body();
                meter?.AddHostThread(CpuClock.OfCurrentThread() - cpu);
                done.SetResult();
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        }) { IsBackground = true, Name = name };
        thread.Start();
        return done.Task;
    }
}
