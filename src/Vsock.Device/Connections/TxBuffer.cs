using System.Buffers;

namespace Vsock.Device.Connections;

/// <summary>
/// Guest data waiting for the host socket (the reference's LocalTxBuf). Kept as a queue of the pooled
/// segments the payloads arrived in, so data is copied once (guest memory → segment) and the socket
/// writes straight from the segment. Its size is bounded by the credit we grant (tx-buffer-size):
/// <see cref="TryPush"/> refuses what would exceed <see cref="Capacity"/>.
/// Segments are rented from <see cref="ArrayPool{T}.Shared"/> and returned once written.
/// </summary>
public sealed class TxBuffer
{
    private readonly Queue<Segment> _segments = new();
    private int _headConsumed;

    public TxBuffer(uint capacity) => Capacity = capacity;

    private struct Segment
    {
        public byte[] Array;
        public int Offset;
        public int Length;
    }

    public uint Capacity { get; }
    public uint Length { get; private set; }
    public bool IsEmpty => Length == 0;

    /// <summary>Takes ownership of <paramref name="array"/> (a pooled array) if the bytes fit.</summary>
    public bool TryPush(byte[] array, int offset, int length)
    {
        if ((ulong)Length + (ulong)length > Capacity)
            return false;
        _segments.Enqueue(new Segment { Array = array, Offset = offset, Length = length });
        Length += (uint)length;
        return true;
    }

    /// <summary>The next bytes to write; empty when the buffer is empty.</summary>
    public ArraySegment<byte> Peek()
    {
        if (!_segments.TryPeek(out var s))
            return ArraySegment<byte>.Empty;
        return new ArraySegment<byte>(s.Array, s.Offset + _headConsumed, s.Length - _headConsumed);
    }

    /// <summary>
    /// Fills <paramref name="into"/> with the next segments to write, in order (for one gathered
    /// write); returns how many. The first one starts after what was already written.
    /// </summary>
    public int PeekSegments(Span<ArraySegment<byte>> into)
    {
        var count = 0;
        foreach (var s in _segments)
        {
            if (count == into.Length)
                break;
            var skip = count == 0 ? _headConsumed : 0;
            into[count++] = new ArraySegment<byte>(s.Array, s.Offset + skip, s.Length - skip);
        }
        return count;
    }

    /// <summary>Marks <paramref name="count"/> bytes written, across segments; drained segments go back to the pool.</summary>
    public void Advance(int count)
    {
        if (count < 0 || (uint)count > Length)
            throw new ArgumentOutOfRangeException(nameof(count));
        Length -= (uint)count;
        while (count > 0)
        {
            var head = _segments.Peek();
            var left = head.Length - _headConsumed;
            if (count < left)
            {
                _headConsumed += count;
                return;
            }
            count -= left;
            _segments.Dequeue();
            _headConsumed = 0;
            ArrayPool<byte>.Shared.Return(head.Array);
        }
    }

    /// <summary>Drops everything (connection reset): segments go back to the pool.</summary>
    public void Clear()
    {
        while (_segments.TryDequeue(out var s))
            ArrayPool<byte>.Shared.Return(s.Array);
        Length = 0;
        _headConsumed = 0;
    }
}
