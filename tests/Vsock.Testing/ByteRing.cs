namespace Vsock.Testing;

/// <summary>A fixed-capacity FIFO of bytes: a stream's receive buffer (capacity = the buf_alloc it advertises).</summary>
internal sealed class ByteRing(int capacity)
{
    private readonly byte[] _buffer = new byte[capacity];
    private int _start;

    public int Count { get; private set; }

    public int Capacity => _buffer.Length;

    /// <summary>Appends all of <paramref name="data"/>, or nothing when it does not fit.</summary>
    public bool TryWrite(ReadOnlySpan<byte> data)
    {
        if (data.Length > _buffer.Length - Count)
            return false;
        var end = (_start + Count) % _buffer.Length;
        var first = Math.Min(data.Length, _buffer.Length - end);
        data[..first].CopyTo(_buffer.AsSpan(end));
        data[first..].CopyTo(_buffer);
        Count += data.Length;
        return true;
    }

    public int Read(Span<byte> destination)
    {
        var n = Math.Min(destination.Length, Count);
        var first = Math.Min(n, _buffer.Length - _start);
        _buffer.AsSpan(_start, first).CopyTo(destination);
        _buffer.AsSpan(0, n - first).CopyTo(destination[first..]);
        _start = (_start + n) % _buffer.Length;
        Count -= n;
        return n;
    }
}
