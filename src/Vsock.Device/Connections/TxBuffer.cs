
namespace Vsock.Device.Connections;

/// <summary>
/// Guest data the host socket refused for now (the reference's LocalTxBuf): a byte ring of <see cref="Capacity"/>
/// bytes. Guest payloads go to the host socket straight from guest memory; only the bytes the socket does not
/// take are copied here, and written from here once the socket has room. The credit we grant bounds what the
/// guest can have in flight, so what is buffered never exceeds tx-buffer-size.
///
/// The storage is rented on first use and kept until <see cref="Dispose"/>: a stream that once backed up is
/// likely to again, and keeping it means no pool traffic per packet in steady state; an idle stream that never
/// backed up holds none (the reference allocates tx-buffer-size for every connection up front).
/// </summary>
public sealed class TxBuffer : IDisposable
{
    private byte[]? _storage;
    private int _head;

    public TxBuffer(uint capacity) => Capacity = capacity;

    public uint Capacity { get; }
    public uint Length { get; private set; }
    public bool IsEmpty => Length == 0;
    public uint Free => Capacity - Length;

    /// <summary>Whether the storage is rented (tests, and the memory accounting of idle streams).</summary>
    public bool HasStorage => _storage is not null;

    /// <summary>Appends <paramref name="data"/> if it fits, all or nothing.</summary>
    public bool TryWrite(ReadOnlySpan<byte> data)
    {
        if (data.Length > Free)
            return false;
        GetWritable(out var first, out var second);
        var n = Math.Min(first.Length, data.Length);
        data[..n].CopyTo(first);
        data[n..].CopyTo(second);
        Length += (uint)data.Length;
        return true;
    }

    /// <summary>The free space as up to two spans (the ring wraps), for a caller that fills them and then calls <see cref="Commit"/>.</summary>
    public void GetWritable(out Span<byte> first, out Span<byte> second)
    {
        var storage = _storage ??= PayloadPool.Rent((int)Capacity);
        var size = (int)Capacity;
        var tail = (_head + (int)Length) % size;
        var free = (int)Free;
        var run = Math.Min(free, size - tail);
        first = storage.AsSpan(tail, run);
        second = storage.AsSpan(0, free - run);
    }

    /// <summary>Counts <paramref name="count"/> bytes written into the spans of <see cref="GetWritable"/>.</summary>
    public void Commit(int count)
    {
        if (count < 0 || count > Free)
            throw new ArgumentOutOfRangeException(nameof(count));
        Length += (uint)count;
    }

    /// <summary>The buffered bytes in order, as up to two spans (the ring wraps).</summary>
    public void GetReadable(out ReadOnlySpan<byte> first, out ReadOnlySpan<byte> second)
    {
        if (_storage is null || Length == 0)
        {
            first = default;
            second = default;
            return;
        }
        var size = (int)Capacity;
        var run = Math.Min((int)Length, size - _head);
        first = _storage.AsSpan(_head, run);
        second = _storage.AsSpan(0, (int)Length - run);
    }

    /// <summary>Drops <paramref name="count"/> bytes from the front (they were written).</summary>
    public void Advance(int count)
    {
        if (count < 0 || (uint)count > Length)
            throw new ArgumentOutOfRangeException(nameof(count));
        Length -= (uint)count;
        _head = Length == 0 ? 0 : (_head + count) % (int)Capacity;
    }

    /// <summary>Drops <paramref name="count"/> bytes from the back (an unfinished SEQPACKET message that will never end).</summary>
    public void DropLast(int count)
    {
        if (count < 0 || (uint)count > Length)
            throw new ArgumentOutOfRangeException(nameof(count));
        Length -= (uint)count;
        if (Length == 0)
            _head = 0;
    }

    /// <summary>Drops everything (a reset stream).</summary>
    public void Clear()
    {
        Length = 0;
        _head = 0;
    }

    public void Dispose()
    {
        Clear();
        if (_storage is { } storage)
        {
            _storage = null;
            PayloadPool.Return(storage);
        }
    }
}
