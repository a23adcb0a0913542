using System.Net.Sockets;
using Vsock.E2E.Tests.Rig;
using Vsock.Testing;

namespace Vsock.InGuest;

/// <summary>What one direction of a stream delivered before EOF.</summary>
internal readonly record struct ReceivedStream(long Bytes, ulong Checksum)
{
    /// <summary>True when exactly the first <paramref name="expectedBytes"/> of the sent stream arrived, then EOF.</summary>
    public bool IsIntact(long expectedBytes, ulong sentChecksum) => Bytes == expectedBytes && Checksum == sentChecksum;
}

/// <summary>
/// Moves the rig's position-addressable pattern (<see cref="TestPattern"/>, the twin of vsock-test.c) over a
/// connected socket or a synthetic guest's stream: the sender ends with a shutdown of its direction and
/// returns the checksum of what it sent, the receiver reads until EOF and returns the length and checksum
/// of what arrived, so one run proves content, length and end-of-stream. Only checksums per byte (no
/// byte-by-byte comparison): under TCG every pass over the data costs about 0.08 s per MiB. A synchronous
/// and an async form for sockets, because a wrapped AF_VSOCK fd must serve both.
/// </summary>
internal static class PatternTransfer
{
    private const int ChunkBytes = 64 * 1024;

    /// <summary>Sends <paramref name="bytes"/> of stream <paramref name="seed"/>, then shuts down sending.</summary>
    public static ulong Send(Socket socket, long bytes, ulong seed)
    {
        var buffer = new byte[ChunkBytes];
        var hash = TestPattern.FnvOffset;
        for (long done = 0; done < bytes;)
        {
            var chunk = buffer.AsSpan(0, (int)Math.Min(buffer.Length, bytes - done));
            TestPattern.Fill(chunk, done, seed);
            hash = TestPattern.Fnv1a(hash, chunk);
            for (var sent = 0; sent < chunk.Length;)
                sent += socket.Send(chunk[sent..]);
            done += chunk.Length;
        }
        socket.Shutdown(SocketShutdown.Send);
        return hash;
    }

    public static Task<ulong> SendAsync(Socket socket, long bytes, ulong seed, CancellationToken cancellation) =>
        SendAsync(
            async (data, token) =>
            {
                for (var sent = 0; sent < data.Length;)
                    sent += await socket.SendAsync(data[sent..], SocketFlags.None, token);
            },
            () => socket.Shutdown(SocketShutdown.Send), bytes, seed, cancellation);

    public static Task<ulong> SendAsync(GuestStream stream, long bytes, ulong seed, CancellationToken cancellation) =>
        SendAsync(stream.WriteAsync, stream.ShutdownWrite, bytes, seed, cancellation);

    /// <summary>Reads until EOF.</summary>
    public static ReceivedStream Receive(Socket socket)
    {
        var buffer = new byte[ChunkBytes];
        var hash = TestPattern.FnvOffset;
        long bytes = 0;
        int n;
        while ((n = socket.Receive(buffer)) > 0)
        {
            hash = TestPattern.Fnv1a(hash, buffer.AsSpan(0, n));
            bytes += n;
        }
        return new ReceivedStream(bytes, hash);
    }

    public static Task<ReceivedStream> ReceiveAsync(Socket socket, CancellationToken cancellation) =>
        ReceiveAsync((buffer, token) => socket.ReceiveAsync(buffer, SocketFlags.None, token), cancellation);

    public static Task<ReceivedStream> ReceiveAsync(GuestStream stream, CancellationToken cancellation) =>
        ReceiveAsync(stream.ReadAsync, cancellation);

    private static async Task<ulong> SendAsync(
        Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> write, Action shutdown, long bytes, ulong seed, CancellationToken cancellation)
    {
        var buffer = new byte[ChunkBytes];
        var hash = TestPattern.FnvOffset;
        for (long done = 0; done < bytes;)
        {
            var length = (int)Math.Min(buffer.Length, bytes - done);
            TestPattern.Fill(buffer.AsSpan(0, length), done, seed);
            hash = TestPattern.Fnv1a(hash, buffer.AsSpan(0, length));
            await write(buffer.AsMemory(0, length), cancellation);
            done += length;
        }
        shutdown();
        return hash;
    }

    private static async Task<ReceivedStream> ReceiveAsync(Func<Memory<byte>, CancellationToken, ValueTask<int>> read, CancellationToken cancellation)
    {
        var buffer = new byte[ChunkBytes];
        var hash = TestPattern.FnvOffset;
        long bytes = 0;
        int n;
        while ((n = await read(buffer.AsMemory(), cancellation)) > 0)
        {
            hash = TestPattern.Fnv1a(hash, buffer.AsSpan(0, n));
            bytes += n;
        }
        return new ReceivedStream(bytes, hash);
    }
}
