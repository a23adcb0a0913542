using Microsoft.Win32.SafeHandles;

namespace Vsock.Device.VhostUser;

/// <summary>
/// Reads whole messages off a transport: exactly the header, then exactly the payload, so a read never
/// reaches into the next message (and never picks up the next message's fds). Stream sockets may hand
/// over a message in pieces; any piece may carry fds.
/// </summary>
public sealed class VhostUserReader(IVhostUserTransport transport)
{
    private readonly byte[] _header = new byte[VhostUserCodec.HeaderSize];
    private readonly List<SafeFileHandle> _fds = [];

    /// <summary>
    /// The next message, or null when the stream ends cleanly between messages. A stream that ends inside
    /// a message, a bad header or too many fds throws <see cref="VhostUserProtocolException"/>; fds received
    /// for a message that is not returned are closed.
    /// </summary>
    public VhostUserMessage? ReadMessage()
    {
        try
        {
            if (!Fill(_header, endAllowed: true))
                return null;
            var header = VhostUserCodec.DecodeHeader(_header);
            // Control messages are rare and small (at most 4 KiB): a fresh array per message is fine.
            var payload = header.Size == 0 ? [] : new byte[header.Size];
            Fill(payload, endAllowed: false);
            var message = new VhostUserMessage(header.Request, header.Flags, payload, _fds);
            _fds.Clear(); // the message owns them now
            return message;
        }
        finally
        {
            foreach (var fd in _fds)
                fd.Dispose();
            _fds.Clear();
        }
    }

    private bool Fill(Span<byte> buffer, bool endAllowed)
    {
        var filled = 0;
        while (filled < buffer.Length)
        {
            var remaining = buffer.Length - filled;
            var n = transport.Receive(buffer[filled..], _fds);
            if (_fds.Count > VhostUserCodec.MaxFds)
                throw new VhostUserProtocolException(VhostUserError.TooManyFds,
                    $"{_fds.Count} fds arrived with one message (limit {VhostUserCodec.MaxFds})");
            if (n == 0)
            {
                if (endAllowed && filled == 0)
                    return false;
                throw new VhostUserProtocolException(VhostUserError.TruncatedMessage,
                    $"connection closed {filled} bytes into a {(endAllowed ? "header" : "payload")} of {buffer.Length} bytes");
            }
            if (n < 0 || n > remaining)
                throw new InvalidOperationException($"transport returned {n} for a {remaining}-byte read");
            filled += n;
        }
        return true;
    }
}
