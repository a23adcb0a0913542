using Microsoft.Win32.SafeHandles;

namespace Vsock.Device.VhostUser;

/// <summary>What <see cref="VhostUserReader.TryRead"/> found.</summary>
public enum VhostUserReadStatus
{
    /// <summary>A whole message was read.</summary>
    Message,
    /// <summary>Nothing more to read now; any partial message is kept. Call again when the transport is readable.</summary>
    NeedMore,
    /// <summary>The stream ended cleanly between messages.</summary>
    EndOfStream,
}

/// <summary>
/// Reads whole messages off a non-blocking transport, resumably: it reads exactly the header, then
/// exactly the payload, so a read never reaches into the next message (and never picks up the next
/// message's fds), and when the transport has nothing more it keeps what it has (header bytes, payload
/// bytes, fds) for the next call. Stream sockets may hand over a message in pieces; any piece may carry
/// fds. Never blocks and never polls: the owner calls <see cref="TryRead"/> on readiness.
/// </summary>
public sealed class VhostUserReader(IVhostUserTransport transport) : IDisposable
{
    private readonly byte[] _header = new byte[VhostUserCodec.HeaderSize];
    private readonly List<SafeFileHandle> _fds = [];
    private int _headerFilled;
    private VhostUserHeader _decoded;
    private byte[]? _payload; // set once the header is complete and valid
    private int _payloadFilled;
    private bool _disposed;

    /// <summary>True while part of a message (header bytes, fds, payload bytes) has arrived and the rest has not.</summary>
    public bool HasPartialMessage => _headerFilled > 0 || _fds.Count > 0;

    /// <summary>
    /// Reads on until a message is complete (<see cref="VhostUserReadStatus.Message"/>, the message is the
    /// caller's to dispose), the transport has nothing more for now (<see cref="VhostUserReadStatus.NeedMore"/>)
    /// or the stream ends between messages (<see cref="VhostUserReadStatus.EndOfStream"/>).
    /// A stream that ends inside a message, a bad header or too many fds throws
    /// <see cref="VhostUserProtocolException"/>; the fds held for that message are closed and the reader
    /// should not be used again.
    /// </summary>
    public VhostUserReadStatus TryRead(out VhostUserMessage? message)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        message = null;
        try
        {
            while (true)
            {
                if (_payload is null)
                {
                    var n = Receive(_header.AsSpan(_headerFilled), "header");
                    if (n < 0)
                        return VhostUserReadStatus.NeedMore;
                    if (n == 0)
                        return VhostUserReadStatus.EndOfStream; // Receive threw if a message was begun
                    _headerFilled += n;
                    if (_headerFilled < _header.Length)
                        continue;
                    _decoded = VhostUserCodec.DecodeHeader(_header);
                    // Control messages are rare and small (at most 4 KiB): a fresh array per message is fine.
                    _payload = _decoded.Size == 0 ? [] : new byte[_decoded.Size];
                }
                if (_payloadFilled < _payload.Length)
                {
                    var n = Receive(_payload.AsSpan(_payloadFilled), "payload");
                    if (n < 0)
                        return VhostUserReadStatus.NeedMore;
                    _payloadFilled += n;
                    continue;
                }
                message = new VhostUserMessage(_decoded.Request, _decoded.Flags, _payload, _fds);
                _fds.Clear(); // the message owns them now
                Reset();
                return VhostUserReadStatus.Message;
            }
        }
        catch
        {
            Discard();
            throw;
        }
    }

    /// <summary>Closes the fds of a partial message, if any.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        Discard();
    }

    /// <summary>Bytes read (&gt;0), -1 for "nothing now", 0 only at a clean end between messages.</summary>
    private int Receive(Span<byte> buffer, string part)
    {
        var n = transport.Receive(buffer, _fds);
        if (_fds.Count > VhostUserCodec.MaxFds)
            throw new VhostUserProtocolException(VhostUserError.TooManyFds,
                $"{_fds.Count} fds arrived with one message (limit {VhostUserCodec.MaxFds})");
        if (n == 0 && HasPartialMessage)
        {
            var filled = _payload is null ? _headerFilled : _payloadFilled;
            var fds = _fds.Count == 0 ? "" : $" ({_fds.Count} fds received with it)";
            throw new VhostUserProtocolException(VhostUserError.TruncatedMessage,
                $"connection closed {filled} bytes into a {part} of {buffer.Length + filled} bytes{fds}");
        }
        if (n < -1 || n > buffer.Length)
            throw new InvalidOperationException($"transport returned {n} for a {buffer.Length}-byte read");
        return n;
    }

    private void Reset()
    {
        _headerFilled = 0;
        _payload = null;
        _payloadFilled = 0;
        _decoded = default;
    }

    private void Discard()
    {
        foreach (var fd in _fds)
            fd.Dispose();
        _fds.Clear();
        Reset();
    }
}
