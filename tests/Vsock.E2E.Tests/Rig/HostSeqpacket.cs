using System.Net.Sockets;

namespace Vsock.E2E.Tests.Rig;

/// <summary>What a host SEQPACKET echo saw on one connection.</summary>
public sealed record SeqpacketEcho(int Messages, long Bytes, ulong Sha, string? Error)
{
    public override string ToString() =>
        $"messages={Messages} bytes={Bytes} sha={TestPattern.Hex(Sha)}{(Error is null ? "" : " error=" + Error)}";
}

/// <summary>
/// Host applications of the SEQPACKET paths (issue 12), on the sockets of <see cref="HostVsock"/>: an echo of every
/// message whole on an accepted <c>&lt;uds_path&gt;_P</c> connection, and an exchange of the guest program's messages
/// over a <c>&lt;uds_path&gt;_seqpacket</c> stream. A message is read with a buffer one byte larger than any the tests
/// send, so a truncation would show.
/// </summary>
public static class HostSeqpacket
{
    /// <summary>Larger than any message of the tests (200,000 bytes at most; tx-buffer-size 262144).</summary>
    public const int MaxMessage = 262144;

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
