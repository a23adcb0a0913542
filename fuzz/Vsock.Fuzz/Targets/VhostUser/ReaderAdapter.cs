using Microsoft.Win32.SafeHandles;
using Vsock.Device.VhostUser;

namespace Vsock.Fuzz.Targets.VhostUser;

/// <summary>What the VMM sent in one <c>sendmsg</c>: bytes, the fds attached to their first byte, and how many
/// bytes one read may return at most (0: as many as asked), so messages arrive split as a stream socket may split them.</summary>
internal readonly record struct Segment(ReadOnlyMemory<byte> Bytes, SafeFileHandle[] Fds, int MaxChunk);

/// <summary>
/// The only code of the target that knows the reader's API and <see cref="IVhostUserTransport"/>: segments in,
/// messages out. The reader is resumable and non-blocking (<see cref="VhostUserReader.TryRead"/>): the transport
/// says "nothing more yet" at the end of every segment, as a non-blocking socket does between two sendmsg calls,
/// so a message split over segments exercises the reader's kept partial state.
/// </summary>
internal sealed class ReaderAdapter : IDisposable
{
    private readonly SegmentTransport _transport;
    private readonly VhostUserReader _reader;

    public ReaderAdapter(IEnumerable<Segment> segments)
    {
        _transport = new SegmentTransport(segments);
        _reader = new VhostUserReader(_transport);
    }

    /// <summary>The next whole message, or null at a clean end of stream; <see cref="VhostUserProtocolException"/> on bad framing.</summary>
    public VhostUserMessage? Next()
    {
        while (true)
        {
            switch (_reader.TryRead(out var message))
            {
                case VhostUserReadStatus.Message:
                    return message;
                case VhostUserReadStatus.EndOfStream:
                    return null;
            }
            // NeedMore: the next Receive moves on to the next segment (or reports the end of the stream).
        }
    }

    /// <summary>Sends a reply to the VMM (recorded only).</summary>
    public void Reply(ReadOnlySpan<byte> reply) => _transport.Send(reply);

    /// <summary>Closes fds never delivered, as the kernel does when the socket goes away.</summary>
    public void Dispose() => _transport.Dispose();

    private sealed class SegmentTransport(IEnumerable<Segment> segments) : IVhostUserTransport, IDisposable
    {
        private readonly Queue<Segment> _segments = new(segments);
        private int _offset;
        private bool _segmentEnded;

        public int Receive(Span<byte> buffer, List<SafeFileHandle> fds)
        {
            if (_segmentEnded)
            {
                _segmentEnded = false;
                return -1; // would block: the next segment is another sendmsg
            }
            // Fds need at least one byte to travel with: a segment without bytes delivers none.
            while (_segments.Count > 0 && _segments.Peek().Bytes.IsEmpty)
                Close(_segments.Dequeue().Fds);
            if (_segments.Count == 0 || buffer.Length == 0)
                return 0;
            var segment = _segments.Peek();
            if (_offset == 0)
                fds.AddRange(segment.Fds);
            var n = Math.Min(buffer.Length, segment.Bytes.Length - _offset);
            if (segment.MaxChunk > 0)
                n = Math.Min(n, segment.MaxChunk);
            segment.Bytes.Span.Slice(_offset, n).CopyTo(buffer);
            _offset += n;
            if (_offset == segment.Bytes.Length)
            {
                _segments.Dequeue();
                _offset = 0;
                _segmentEnded = true;
            }
            return n;
        }

        public int Send(ReadOnlySpan<byte> data) => data.Length;

        public void Dispose()
        {
            if (_segments.Count > 0 && _offset > 0)
                _segments.Dequeue(); // its fds were delivered already
            while (_segments.Count > 0)
                Close(_segments.Dequeue().Fds);
            _offset = 0;
        }

        private static void Close(SafeFileHandle[] fds)
        {
            foreach (var fd in fds)
                fd.Dispose();
        }
    }
}
