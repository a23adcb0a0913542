using Vsock.Device.Connections;

namespace Vsock.Device.Tests.Connections;

public class TxBufferTests
{
    private static byte[] Bytes(int length, byte first) => Enumerable.Range(0, length).Select(i => (byte)(first + i)).ToArray();

    private static byte[] Readable(TxBuffer tx)
    {
        tx.GetReadable(out var first, out var second);
        return [.. first, .. second];
    }

    [Fact]
    public void Holds_no_storage_until_something_is_written()
    {
        using var tx = new TxBuffer(65536);
        Assert.False(tx.HasStorage);
        tx.GetReadable(out var first, out var second);
        Assert.True(first.IsEmpty && second.IsEmpty);
        Assert.True(tx.TryWrite([1]));
        Assert.True(tx.HasStorage);
    }

    [Fact]
    public void Refuses_what_exceeds_the_capacity_all_or_nothing()
    {
        using var tx = new TxBuffer(100);
        Assert.True(tx.TryWrite(Bytes(60, 1)));
        Assert.False(tx.TryWrite(Bytes(41, 2)));
        Assert.Equal(60u, tx.Length);
        Assert.True(tx.TryWrite(Bytes(40, 3)));
        Assert.Equal(100u, tx.Length);
        Assert.Equal(0u, tx.Free);
    }

    [Fact]
    public void Keeps_the_order_of_bytes_across_the_wrap_of_the_ring()
    {
        using var tx = new TxBuffer(10);
        Assert.True(tx.TryWrite(Bytes(8, 0)));
        tx.Advance(6);
        Assert.True(tx.TryWrite(Bytes(7, 100))); // 2 old bytes + 7 new: wraps
        tx.GetReadable(out var first, out var second);
        Assert.Equal(4, first.Length);
        Assert.Equal(5, second.Length);
        Assert.Equal(new byte[] { 6, 7, 100, 101, 102, 103, 104, 105, 106 }, Readable(tx));
    }

    [Fact]
    public void Writable_spans_and_commit_fill_the_free_space_in_order()
    {
        using var tx = new TxBuffer(8);
        tx.TryWrite(Bytes(6, 0));
        tx.Advance(5);
        tx.GetWritable(out var first, out var second);
        Assert.Equal(2, first.Length); // up to the end of the ring
        Assert.Equal(5, second.Length); // then from the start, up to the byte still held
        first.Fill(50);
        second[..3].Fill(60);
        tx.Commit(5);
        Assert.Equal(new byte[] { 5, 50, 50, 60, 60, 60 }, Readable(tx));
    }

    [Fact]
    public void Drains_in_order_across_partial_writes_and_starts_over_when_empty()
    {
        using var tx = new TxBuffer(16);
        tx.TryWrite(Bytes(10, 0));
        tx.Advance(4);
        Assert.Equal(Bytes(6, 4), Readable(tx));
        tx.Advance(6);
        Assert.True(tx.IsEmpty);
        tx.TryWrite(Bytes(16, 20)); // empty: the whole capacity is one run again
        tx.GetReadable(out var first, out var second);
        Assert.Equal(16, first.Length);
        Assert.True(second.IsEmpty);
    }

    [Fact]
    public void Advance_and_commit_refuse_counts_outside_the_buffer()
    {
        using var tx = new TxBuffer(4);
        tx.TryWrite(Bytes(2, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => tx.Advance(3));
        Assert.Throws<ArgumentOutOfRangeException>(() => tx.Commit(3));
        Assert.Throws<ArgumentOutOfRangeException>(() => tx.Advance(-1));
    }

    [Fact]
    public void Clear_drops_everything_and_dispose_returns_the_storage()
    {
        var tx = new TxBuffer(32);
        tx.TryWrite(Bytes(20, 0));
        tx.Clear();
        Assert.True(tx.IsEmpty);
        Assert.True(tx.HasStorage);
        tx.Dispose();
        Assert.False(tx.HasStorage);
    }
}
