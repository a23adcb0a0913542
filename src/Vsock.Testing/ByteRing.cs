namespace Vsock.Testing;

/// <summary>
/// A fixed-capacity FIFO of bytes: a stream's receive buffer (capacity = the buf_alloc it advertises).
/// The array is made on the first write, so thousands of idle streams (the idle-connection benchmark)
/// do not hold buf_alloc bytes each.
/// </summary>
internal sealed class ByteRing(int capacity)
{
    private byte[] _buffer = [];
    private int _start;

    public int Count { get; private set; }

    public int Capacity { get; } = capacity;

    /// <summary>Appends all of <paramref name="data"/>, or nothing when it does not fit.</summary>
    public bool TryWrite(ReadOnlySpan<byte> data)
    {
        if (data.Length > Capacity - Count)
            return false;
        if (data.IsEmpty)
            return true;
        if (_buffer.Length == 0)
            _buffer = new byte[Capacity];
        var end = (_start + Count) % _buffer.Length;
        var first = Math.Min(data.Length, _buffer.Length - end);
        data[..first].CopyTo(_buffer.AsSpan(end));
        data[first..].CopyTo(_buffer);
        Count += data.Length;
        return true;
    }

    /// <summary>Drops <paramref name="count"/> bytes from the front (the part of a message a short read did not take).</summary>
    public void Skip(int count)
    {
        count = Math.Min(count, Count);
        if (count == 0)
            return;
        _start = (_start + count) % _buffer.Length;
        Count -= count;
    }

    public int Read(Span<byte> destination)
    {
        var n = Math.Min(destination.Length, Count);
        if (n == 0)
            return 0;
        var first = Math.Min(n, _buffer.Length - _start);
        _buffer.AsSpan(_start, first).CopyTo(destination);
        _buffer.AsSpan(0, n - first).CopyTo(destination[first..]);
        _start = (_start + n) % _buffer.Length;
        Count -= n;
        return n;
    }
}
