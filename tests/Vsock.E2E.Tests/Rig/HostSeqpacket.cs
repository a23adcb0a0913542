using System.Net.Sockets;
using System.Text;

namespace Vsock.E2E.Tests.Rig;

/// <summary>What a host SEQPACKET echo saw on one connection.</summary>
public sealed record SeqpacketEcho(int Messages, long Bytes, ulong Sha, string? Error)
{
    public override string ToString() =>
        $"messages={Messages} bytes={Bytes} sha={TestPattern.Hex(Sha)}{(Error is null ? "" : " error=" + Error)}";
}

/// <summary>
/// Host applications of the SEQPACKET paths (issue 12): a SOCK_SEQPACKET listener on <c>&lt;uds_path&gt;_P</c> that
/// echoes every message whole, and a client of <c>&lt;uds_path&gt;_seqpacket</c> that speaks the CONNECT and OK
/// messages. A message is read with a buffer one byte larger than any the tests send, so a truncation would show.
/// </summary>
public static class HostSeqpacket
{
    /// <summary>Larger than any message of the tests (200,000 bytes at most; tx-buffer-size 262144).</summary>
    public const int MaxMessage = 262144;

    public static Socket Listen(string path)
    {
        File.Delete(path);
        var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(path));
        socket.Listen(16);
        return socket;
    }

    /// <summary>Accepts one connection on <paramref name="listener"/> and echoes its messages until EOF.</summary>
    public static async Task<SeqpacketEcho> AcceptAndEchoAsync(Socket listener, CancellationToken cancellationToken)
    {
        using var socket = await listener.AcceptAsync(cancellationToken);
        var buffer = new byte[MaxMessage + 1];
        var messages = 0;
        long bytes = 0;
        var sha = TestPattern.FnvOffset;
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
                if (n == 0)
                    return new SeqpacketEcho(messages, bytes, sha, null);
                if (n > MaxMessage)
                    return new SeqpacketEcho(messages, bytes, sha, $"message {messages} longer than {MaxMessage} bytes");
                sha = TestPattern.Fnv1a(sha, buffer.AsSpan(0, n));
                messages++;
                bytes += n;
                await socket.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, cancellationToken);
            }
        }
        catch (SocketException e)
        {
            return new SeqpacketEcho(messages, bytes, sha, e.SocketErrorCode.ToString());
        }
    }

    /// <summary>
    /// Opens a SEQPACKET stream to guest port <paramref name="port"/> through <c>&lt;uds_path&gt;_seqpacket</c>: the
    /// first message is <c>CONNECT port\n</c>, the answer one message <c>OK port\n</c>. Throws
    /// <see cref="GuestRefusedException"/> if the daemon closes the socket instead.
    /// </summary>
    public static async Task<Socket> ConnectAsync(string udsPath, uint port, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(udsPath + "_seqpacket"), cancellationToken);
            await socket.SendAsync(Encoding.ASCII.GetBytes($"CONNECT {port}\n"), SocketFlags.None, cancellationToken);
            var reply = new byte[64];
            int n;
            try
            {
                n = await socket.ReceiveAsync(reply, SocketFlags.None, cancellationToken);
            }
            catch (SocketException e)
            {
                throw new GuestRefusedException($"CONNECT {port} (SEQPACKET): {e.SocketErrorCode}");
            }
            if (n == 0)
                throw new GuestRefusedException($"CONNECT {port} (SEQPACKET): the daemon closed the connection without OK");
            var line = Encoding.ASCII.GetString(reply, 0, n);
            if (line != $"OK {port}\n")
                throw new IOException($"CONNECT {port} (SEQPACKET): expected the message 'OK {port}\\n', got '{line}'");
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sends messages 0..count-1 of <see cref="TestPattern.SeqMessage"/>, one at a time, and checks each echo: one
    /// message, same length, same bytes. Returns the checksum of all bytes sent; throws on the first difference.
    /// </summary>
    public static async Task<ulong> ExchangeAsync(Socket socket, int count, ulong seed, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxMessage + 1];
        var sha = TestPattern.FnvOffset;
        for (var i = 0; i < count; i++)
        {
            var message = TestPattern.SeqMessage(i, seed);
            sha = TestPattern.Fnv1a(sha, message);
            await socket.SendAsync(message, SocketFlags.None, cancellationToken);
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (n != message.Length || !buffer.AsSpan(0, n).SequenceEqual(message))
                throw new IOException($"message {i} of {message.Length} bytes came back as {n} bytes{(n == message.Length ? " with other bytes" : "")}");
        }
        return sha;
    }

    /// <summary>The checksum of messages 0..count-1 (what an echo of them reports).</summary>
    public static ulong Checksum(int count, ulong seed)
    {
        var sha = TestPattern.FnvOffset;
        for (var i = 0; i < count; i++)
            sha = TestPattern.Fnv1a(sha, TestPattern.SeqMessage(i, seed));
        return sha;
    }
}
