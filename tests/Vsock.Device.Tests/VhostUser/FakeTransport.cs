using Microsoft.Win32.SafeHandles;
using Vsock.Device.VhostUser;

namespace Vsock.Device.Tests.VhostUser;

/// <summary>
/// An in-memory stream socket: segments of bytes, each with the fds sent alongside (delivered with the
/// segment's first byte, as SCM_RIGHTS is). A read never crosses a segment boundary, like the kernel
/// with fds attached; <see cref="MaxChunk"/> or <see cref="ChunkRandom"/> make reads shorter still.
/// </summary>
internal sealed class FakeTransport : IVhostUserTransport, IDisposable
{
    private readonly Queue<(byte[] Bytes, SafeFileHandle[] Fds)> _segments = new();
    private int _offset;

    public int MaxChunk { get; set; } = int.MaxValue;
    public Random? ChunkRandom { get; set; }
    public List<byte[]> Sent { get; } = [];
    public int ReceiveCalls { get; private set; }

    public void Enqueue(byte[] bytes, params SafeFileHandle[] fds) => _segments.Enqueue((bytes, fds));

    public int Receive(Span<byte> buffer, List<SafeFileHandle> fds)
    {
        ReceiveCalls++;
        while (_segments.Count > 0 && _segments.Peek().Bytes.Length == 0)
        {
            // Fds need at least one byte to travel with; a real socket would never deliver these.
            foreach (var fd in _segments.Dequeue().Fds)
                fd.Dispose();
        }
        if (_segments.Count == 0 || buffer.Length == 0)
            return 0;
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

    public void Send(ReadOnlySpan<byte> data) => Sent.Add(data.ToArray());

    /// <summary>Closes fds never delivered (the kernel does so when the socket goes away).</summary>
    public void Dispose()
    {
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
