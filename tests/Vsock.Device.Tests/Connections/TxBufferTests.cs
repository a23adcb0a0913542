using System.Buffers;
using Vsock.Device.Connections;

namespace Vsock.Device.Tests.Connections;

public class TxBufferTests
{
    private static byte[] Segment(int length, byte fill)
    {
        var a = ArrayPool<byte>.Shared.Rent(length);
        a.AsSpan(0, length).Fill(fill);
        return a;
    }

    [Fact]
    public void Refuses_what_exceeds_the_capacity_all_or_nothing()
    {
        var tx = new TxBuffer(100);
        Assert.True(tx.TryPush(Segment(60, 1), 0, 60));
        Assert.False(tx.TryPush(Segment(41, 2), 0, 41));
        Assert.Equal(60u, tx.Length);
        Assert.True(tx.TryPush(Segment(40, 3), 0, 40));
        Assert.Equal(100u, tx.Length);
    }

    [Fact]
    public void Drains_in_order_across_partial_writes()
    {
        var tx = new TxBuffer(1000);
        tx.TryPush(Segment(10, 1), 0, 10);
        tx.TryPush(Segment(5, 2), 0, 5);
        var head = tx.Peek();
        Assert.Equal(10, head.Count);
        tx.Advance(4);
        head = tx.Peek();
        Assert.Equal(6, head.Count);
        Assert.All(head, b => Assert.Equal(1, b));
        tx.Advance(6);
        head = tx.Peek();
        Assert.Equal(5, head.Count);
        Assert.All(head, b => Assert.Equal(2, b));
        tx.Advance(5);
        Assert.True(tx.IsEmpty);
        Assert.Equal(0, tx.Peek().Count);
    }

    [Fact]
    public void Segments_for_a_gathered_write_start_after_what_was_written_and_advance_spans_them()
    {
        var tx = new TxBuffer(1000);
        tx.TryPush(Segment(10, 1), 0, 10);
        tx.TryPush(Segment(5, 2), 0, 5);
        tx.TryPush(Segment(7, 3), 0, 7);
        tx.Advance(4);
        var segments = new ArraySegment<byte>[2];
        Assert.Equal(2, tx.PeekSegments(segments)); // bounded by the span
        Assert.Equal([6, 5], segments.Select(s => s.Count));
        tx.Advance(6 + 5 + 2); // a write that ends inside the third segment
        Assert.Equal(1, tx.PeekSegments(segments));
        Assert.Equal(5, segments[0].Count);
        Assert.All(segments[0], b => Assert.Equal(3, b));
        Assert.Equal(5u, tx.Length);
    }

    [Fact]
    public void Advance_beyond_what_is_buffered_is_a_bug()
    {
        var tx = new TxBuffer(100);
        tx.TryPush(Segment(10, 1), 0, 10);
        Assert.Throws<ArgumentOutOfRangeException>(() => tx.Advance(11));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TxBuffer(10).Advance(1));
    }

    [Fact]
    public void Clear_empties_the_buffer()
    {
        var tx = new TxBuffer(100);
        tx.TryPush(Segment(10, 1), 0, 10);
        tx.Advance(3);
        tx.Clear();
        Assert.True(tx.IsEmpty);
        Assert.True(tx.TryPush(Segment(100, 1), 0, 100));
        Assert.Equal(100, tx.Peek().Count);
    }
}
