using Microsoft.Win32.SafeHandles;
using Vsock.Device.VhostUser;

namespace Vsock.Device.Tests.VhostUser;

/// <summary>
/// An in-memory non-blocking stream socket. Incoming: segments of bytes, each with the fds sent alongside
/// (delivered with the segment's first byte, as SCM_RIGHTS is); a read never crosses a segment boundary,
/// like the kernel with fds attached, and <see cref="MaxChunk"/> or <see cref="ChunkRandom"/> make reads
/// shorter still. With no segment left a read would block (-1) until <see cref="Complete"/> ends the
/// stream (0). Outgoing: <see cref="SendRoom"/> bytes are taken, then sends take nothing (a VMM that
/// does not read), until the test makes room again.
/// </summary>
internal sealed class FakeTransport : IVhostUserTransport
{
    private readonly Queue<(byte[] Bytes, SafeFileHandle[] Fds)> _segments = new();
    private int _offset;

    public int MaxChunk { get; set; } = int.MaxValue;
    public Random? ChunkRandom { get; set; }

    /// <summary>True once the peer closed its end: reads past the segments return 0.</summary>
    public bool EndOfStream { get; private set; }

    /// <summary>Bytes the next sends may take in all; what the peer reads frees room (tests set it).</summary>
    public long SendRoom { get; set; } = long.MaxValue;

    /// <summary>What each send took (a whole reply when there was room).</summary>
    public List<byte[]> Sent { get; } = [];

    public IEnumerable<byte> SentBytes => Sent.SelectMany(chunk => chunk);

    public int ReceiveCalls { get; private set; }
    public int SendCalls { get; private set; }
    public bool Disposed { get; private set; }

    /// <summary>When set, every send throws it (the VMM is gone).</summary>
    public Exception? SendFailure { get; set; }

    public void Enqueue(byte[] bytes, params SafeFileHandle[] fds) => _segments.Enqueue((bytes, fds));

    /// <summary>The peer hangs up after what was enqueued.</summary>
    public void Complete() => EndOfStream = true;

    public int Receive(Span<byte> buffer, List<SafeFileHandle> fds)
    {
        ReceiveCalls++;
        ObjectDisposedException.ThrowIf(Disposed, this);
        while (_segments.Count > 0 && _segments.Peek().Bytes.Length == 0)
        {
            // Fds with no byte to ride on: a real socket cannot do this; hand them over on their own.
            fds.AddRange(_segments.Dequeue().Fds);
        }
        if (_segments.Count == 0)
            return EndOfStream ? 0 : -1;
        var (bytes, segmentFds) = _segments.Peek();
        if (_offset == 0)
            fds.AddRange(segmentFds);
        var chunk = ChunkRandom is null ? MaxChunk : ChunkRandom.Next(1, 64);
        var n = Math.Min(Math.Min(buffer.Length, bytes.Length - _offset), chunk);
        bytes.AsSpan(_offset, n).CopyTo(buffer);
        _offset += n;
        if (_offset == bytes.Length)
        {
            _segments.Dequeue();
            _offset = 0;
        }
        return n;
    }

    public int Send(ReadOnlySpan<byte> data)
    {
        SendCalls++;
        ObjectDisposedException.ThrowIf(Disposed, this);
        if (SendFailure is not null)
            throw SendFailure;
        var n = (int)Math.Min(data.Length, SendRoom);
        SendRoom -= n;
        if (n > 0)
            Sent.Add(data[..n].ToArray());
        return n;
    }

    /// <summary>Closes fds never delivered (the kernel does so when the socket goes away).</summary>
    public void Dispose()
    {
        Disposed = true;
        var first = true;
        while (_segments.Count > 0)
        {
            var (_, fds) = _segments.Dequeue();
            if (!(first && _offset > 0))
            {
                foreach (var fd in fds)
                    fd.Dispose();
            }
            first = false;
        }
        _offset = 0;
    }
}

internal static class ReaderTestExtensions
{
    /// <summary>For tests whose bytes are all there already: the next message, or null at end of stream.</summary>
    public static VhostUserMessage? ReadMessage(this VhostUserReader reader)
    {
        var status = reader.TryRead(out var message);
        Assert.NotEqual(VhostUserReadStatus.NeedMore, status);
        return message;
    }
}
