using System.Net.Sockets;
using System.Text;

namespace Vsock.E2E.Tests.Rig;

/// <summary>The guest refused a host-initiated connection: the daemon closed the socket without "OK".</summary>
public sealed class GuestRefusedException(string message) : IOException(message);

/// <summary>What one host-side exchange moved; checksums are <see cref="TestPattern"/>'s FNV-1a.</summary>
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
    private long received;

    public long Received => Interlocked.Read(ref received);

    internal void Add(long bytes) => Interlocked.Add(ref received, bytes);
}

/// <summary>
/// The host side of the daemon's unix-socket protocol (the reference's "hybrid vsock"): connect to
/// <c>uds_path</c>, write <c>CONNECT &lt;port&gt;\n</c>, read <c>OK &lt;port&gt;\n</c>, then a plain byte stream.
/// </summary>
public static class HostVsock
{
    private const int Chunk = 64 * 1024;

    /// <summary>
    /// Opens a connection to guest port <paramref name="port"/> through the daemon. Throws
    /// <see cref="GuestRefusedException"/> if the daemon closes the socket instead of answering OK.
    /// No data is sent before OK arrives, and the OK line is read byte by byte so no payload is consumed.
    /// </summary>
    public static async Task<Socket> ConnectAsync(string udsPath, uint port, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(udsPath), cancellationToken);
            await SendAllAsync(socket, Encoding.ASCII.GetBytes($"CONNECT {port}\n"), cancellationToken);
            var reply = await ReadLineAsync(socket, 64, cancellationToken);
            if (reply is null)
            {
                throw new GuestRefusedException($"CONNECT {port}: the daemon closed the connection without OK");
            }
            if (reply != $"OK {port}")
            {
                throw new IOException($"CONNECT {port}: expected 'OK {port}', got '{reply}'");
            }
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Reads one '\n'-terminated line; null on EOF or reset before the newline.</summary>
    public static async Task<string?> ReadLineAsync(Socket socket, int maxLength, CancellationToken cancellationToken)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (line.Length <= maxLength)
        {
            int n;
            try
            {
                n = await socket.ReceiveAsync(one, SocketFlags.None, cancellationToken);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
            {
                return null;
            }
            if (n == 0)
            {
                return null;
            }
            if (one[0] == (byte)'\n')
            {
                return line.ToString();
            }
            line.Append((char)one[0]);
        }
        throw new IOException($"line longer than {maxLength} bytes: '{line}'");
    }

    public static async Task SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var n = await socket.SendAsync(data, SocketFlags.None, cancellationToken);
            data = data[n..];
        }
    }

    /// <summary>
    /// Sends <paramref name="bytes"/> of stream <paramref name="seed"/> while reading the echo, half-closes
    /// after the last byte and reads to EOF; every echoed byte is compared with what was sent.
    /// </summary>
    public static async Task<TransferResult> EchoAsync(
        Socket socket, long bytes, ulong seed, CancellationToken cancellationToken, TransferProgress? progress = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var send = SendPatternAsync(socket, bytes, seed, halfClose: true, cancellationToken);
        var receive = ReceiveAndCompareAsync(socket, seed, progress, cancellationToken);
        await Task.WhenAll(send, receive);
        var (received, receivedSha, mismatch) = await receive;
        return new TransferResult(bytes, received, await send, receivedSha, mismatch, clock.Elapsed);
    }

    /// <summary>Sends the pattern; returns its checksum. Optionally half-closes (SHUT_WR) afterwards.</summary>
    public static async Task<ulong> SendPatternAsync(Socket socket, long bytes, ulong seed, bool halfClose, CancellationToken cancellationToken)
    {
        var buffer = new byte[Chunk];
        var sha = TestPattern.FnvOffset;
        for (long sent = 0; sent < bytes;)
        {
            var n = (int)Math.Min(buffer.Length, bytes - sent);
            TestPattern.Fill(buffer.AsSpan(0, n), sent, seed);
            sha = TestPattern.Fnv1a(sha, buffer.AsSpan(0, n));
            await SendAllAsync(socket, buffer.AsMemory(0, n), cancellationToken);
            sent += n;
        }
        if (halfClose)
        {
            socket.Shutdown(SocketShutdown.Send);
        }
        return sha;
    }

    /// <summary>Reads to EOF; returns the byte count and checksum.</summary>
    public static async Task<(long Bytes, ulong Sha)> ReadToEndAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[Chunk];
        var sha = TestPattern.FnvOffset;
        long total = 0;
        while (true)
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (n == 0)
            {
                return (total, sha);
            }
            sha = TestPattern.Fnv1a(sha, buffer.AsSpan(0, n));
            total += n;
        }
    }

    private static async Task<(long Received, ulong Sha, long FirstMismatchAt)> ReceiveAndCompareAsync(
        Socket socket, ulong seed, TransferProgress? progress, CancellationToken cancellationToken)
    {
        var buffer = new byte[Chunk];
        var expected = new byte[Chunk];
        var sha = TestPattern.FnvOffset;
        long total = 0;
        long mismatch = -1;
        while (true)
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (n == 0)
            {
                return (total, sha, mismatch);
            }
            sha = TestPattern.Fnv1a(sha, buffer.AsSpan(0, n));
            if (mismatch < 0)
            {
                TestPattern.Fill(expected.AsSpan(0, n), total, seed);
                var differ = buffer.AsSpan(0, n).CommonPrefixLength(expected.AsSpan(0, n));
                if (differ < n)
                {
                    mismatch = total + differ;
                }
            }
            total += n;
            progress?.Add(n);
        }
    }
}
