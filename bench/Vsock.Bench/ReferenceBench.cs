using System.Diagnostics;
using System.Net.Sockets;

namespace Vsock.Bench;

/// <summary>
/// The physical reference: the same bytes through a plain connected pair of unix stream sockets
/// between two threads, the reader copying each read once more into another buffer (the one copy
/// any relay must make). What the daemon does is at least this plus a second socket hop.
/// </summary>
internal static class ReferenceBench
{
    public static async Task<double> RunAsync(string directory, int writeSize, int streams, long totalBytes)
    {
        var perStream = totalBytes / streams;
        var path = Path.Combine(directory, $"ref-{writeSize}-{streams}.sock");
        File.Delete(path);
        using var listener = HostSockets.NewUnix();
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(streams);
        var pairs = new List<(Socket Writer, Socket Reader)>();
        try
        {
            for (var i = 0; i < streams; i++)
            {
                var writer = HostSockets.NewUnix();
                writer.Connect(new UnixDomainSocketEndPoint(path));
                pairs.Add((writer, listener.Accept()));
            }
            var stopwatch = Stopwatch.StartNew();
            var work = new List<Task>();
            foreach (var (writer, reader) in pairs)
            {
                work.Add(HostSockets.RunThread("ref-writer", () => HostSockets.SendBlocking(writer, perStream, writeSize)));
                work.Add(HostSockets.RunThread("ref-reader", () => ReceiveAndCopy(reader, perStream)));
            }
            await Task.WhenAll(work);
            stopwatch.Stop();
            return perStream * streams / stopwatch.Elapsed.TotalSeconds;
        }
        finally
        {
            foreach (var (writer, reader) in pairs)
            {
                writer.Dispose();
                reader.Dispose();
            }
            File.Delete(path);
        }
    }

    private static void ReceiveAndCopy(Socket socket, long total)
    {
        var buffer = new byte[64 * 1024];
        var copy = new byte[64 * 1024];
        var left = total;
        while (left > 0)
        {
            var n = socket.Receive(buffer, 0, (int)Math.Min(left, buffer.Length), SocketFlags.None);
            if (n == 0)
                throw new EndOfStreamException();
            buffer.AsSpan(0, n).CopyTo(copy);
            left -= n;
        }
    }
}
