using System.Net.Sockets;
using Vsock.Testing.HostSide;

namespace Vsock.Bench;

/// <summary>
/// What the benchmark's host applications do beyond <see cref="HostVsock"/> (CONNECT/OK, uds-path_PORT listeners):
/// bulk blocking transfers, and loops on threads of their own whose CPU time can be measured.
/// </summary>
internal static class HostSockets
{
    public static Socket NewUnix() => new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);

    /// <summary>Blocking: sends <paramref name="total"/> bytes in writes of <paramref name="writeSize"/>.</summary>
    public static void SendBlocking(Socket socket, long total, int writeSize)
    {
        var chunk = TestPattern.RandomBytes(writeSize, writeSize);
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
        })
        { IsBackground = true, Name = name };
        thread.Start();
        return done.Task;
    }
}
