using System.Diagnostics;
using System.Net.Sockets;

namespace Vsock.Testing.HostSide;

/// <summary>What one direction of a stream delivered before EOF.</summary>
public readonly record struct ReceivedStream(long Bytes, ulong Checksum)
{
    /// <summary>True when exactly the first <paramref name="expectedBytes"/> of the sent stream arrived, then EOF.</summary>
    public bool IsIntact(long expectedBytes, ulong sentChecksum) => Bytes == expectedBytes && Checksum == sentChecksum;
}

/// <summary>What one echo exchange moved; checksums are <see cref="TestPattern"/>'s FNV-1a.</summary>
public sealed record TransferResult(long Sent, long Received, ulong SentSha, ulong ReceivedSha, long FirstMismatchAt, TimeSpan Elapsed)
{
    public bool IsExactEcho => Sent == Received && SentSha == ReceivedSha && FirstMismatchAt < 0;

    public double MegabytesPerSecond => Elapsed.TotalSeconds > 0 ? Sent / Elapsed.TotalSeconds / 1e6 : 0;

    public override string ToString() =>
        $"sent={Sent} recv={Received} sha={TestPattern.Hex(SentSha)} rsha={TestPattern.Hex(ReceivedSha)} "
        + $"mismatch@{FirstMismatchAt} {Elapsed.TotalMilliseconds:0} ms ({MegabytesPerSecond:0.0} MB/s)";
}

/// <summary>Bytes received so far by a running exchange (read from another thread).</summary>
public sealed class TransferProgress
{
    private long _received;

    public long Received => Interlocked.Read(ref _received);

    internal void Add(long bytes) => Interlocked.Add(ref _received, bytes);
}

/// <summary>
/// Moves the position-addressable pattern (<see cref="TestPattern"/>, the twin of the guest program
/// tests/e2e/guest/vsock-test.c) over a connected socket or a synthetic guest's stream: the sender ends with a
/// shutdown of its direction and returns the checksum of what it sent, the receiver reads until EOF and returns the
/// length and checksum of what arrived, so one run proves content, length and end of stream. Checksums only (no
/// byte-by-byte comparison) except in <see cref="EchoAsync"/>: inside a TCG guest every pass over the data costs
/// about 0.08 s per MiB. Synchronous forms too, because a wrapped AF_VSOCK fd in a guest must serve both.
/// </summary>
public static class PatternTransfer
{
    private const int ChunkBytes = 64 * 1024;

    /// <summary>Blocking: sends <paramref name="bytes"/> of stream <paramref name="seed"/>, then shuts down sending.</summary>
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

    /// <summary>Sends <paramref name="bytes"/> of stream <paramref name="seed"/>; then shuts down sending unless <paramref name="shutdown"/> is false.</summary>
    public static Task<ulong> SendAsync(Socket socket, long bytes, ulong seed, CancellationToken cancellation, bool shutdown = true) =>
        SendAsync(
            async (data, token) => await socket.SendAllAsync(data, token),
            shutdown ? () => socket.Shutdown(SocketShutdown.Send) : () => { },
            bytes, seed, cancellation);

    /// <summary>Sends <paramref name="bytes"/> of stream <paramref name="seed"/> from the guest, then shuts down its sending side.</summary>
    public static Task<ulong> SendAsync(GuestStream stream, long bytes, ulong seed, CancellationToken cancellation) =>
        SendAsync(stream.WriteAsync, stream.ShutdownWrite, bytes, seed, cancellation);

    /// <summary>Blocking: reads until EOF.</summary>
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

    /// <summary>Reads until EOF.</summary>
    public static Task<ReceivedStream> ReceiveAsync(Socket socket, CancellationToken cancellation) =>
        ReceiveAsync((buffer, token) => socket.ReceiveAsync(buffer, SocketFlags.None, token), cancellation);

    /// <summary>Reads the guest's stream until EOF.</summary>
    public static Task<ReceivedStream> ReceiveAsync(GuestStream stream, CancellationToken cancellation) =>
        ReceiveAsync(stream.ReadAsync, cancellation);

    /// <summary>
    /// Sends <paramref name="bytes"/> of stream <paramref name="seed"/> while reading the echo, half-closes after the
    /// last byte and reads to EOF; every echoed byte is compared with what was sent, and the first that differs is
    /// reported (<see cref="TransferResult.FirstMismatchAt"/>).
    /// </summary>
    public static async Task<TransferResult> EchoAsync(
        Socket socket, long bytes, ulong seed, CancellationToken cancellationToken, TransferProgress? progress = null)
    {
        var clock = Stopwatch.StartNew();
        var send = SendAsync(socket, bytes, seed, cancellationToken);
        var receive = ReceiveAndCompareAsync(socket, seed, progress, cancellationToken);
        await Task.WhenAll(send, receive);
        var (received, receivedSha, mismatch) = await receive;
        return new TransferResult(bytes, received, await send, receivedSha, mismatch, clock.Elapsed);
    }

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

    private static async Task<(long Received, ulong Sha, long FirstMismatchAt)> ReceiveAndCompareAsync(
        Socket socket, ulong seed, TransferProgress? progress, CancellationToken cancellationToken)
    {
        var buffer = new byte[ChunkBytes];
        var expected = new byte[ChunkBytes];
        var sha = TestPattern.FnvOffset;
        long total = 0;
        long mismatch = -1;
        while (true)
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (n == 0)
                return (total, sha, mismatch);
            sha = TestPattern.Fnv1a(sha, buffer.AsSpan(0, n));
            if (mismatch < 0)
            {
                TestPattern.Fill(expected.AsSpan(0, n), total, seed);
                var same = buffer.AsSpan(0, n).CommonPrefixLength(expected.AsSpan(0, n));
                if (same < n)
                    mismatch = total + same;
            }
            total += n;
            progress?.Add(n);
        }
    }
}
