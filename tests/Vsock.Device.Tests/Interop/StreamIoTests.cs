using Vsock.Device.Interop;

namespace Vsock.Device.Tests.Interop;

public class StreamIoTests
{
    [Fact]
    public void A_gathered_write_sends_the_segments_in_order()
    {
        var (a, b) = UnixSocket.Pair();
        using (a)
        using (b)
        {
            var one = new byte[] { 0, 1, 2, 3, 4 };
            var two = new byte[] { 9, 5, 6, 9 };
            var three = new byte[] { 7 };
            ArraySegment<byte>[] segments = [new(one, 1, 4), new(two, 1, 2), new(three)];
            Assert.Equal(7, StreamIo.Send(a.Handle, segments));
            var got = new byte[16];
            Assert.Equal(7, StreamIo.Receive(b.Handle, got));
            Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7 }, got[..7]);
        }
    }

    [Fact]
    public void Empty_socket_would_block_and_a_closed_peer_reads_eof_and_breaks_writes()
    {
        var (a, b) = UnixSocket.Pair();
        using (a)
        {
            Assert.Equal(StreamIo.WouldBlock, StreamIo.Receive(a.Handle, new byte[8]));
            b.Dispose();
            Assert.Equal(0, StreamIo.Receive(a.Handle, new byte[8]));
            Assert.Equal(-Errno.EPIPE, StreamIo.Send(a.Handle, new byte[] { 1 }));
        }
    }

    [Fact]
    public void A_full_socket_takes_part_then_would_block()
    {
        var (a, b) = UnixSocket.Pair();
        using (a)
        using (b)
        {
            var chunk = new byte[64 * 1024];
            var total = 0;
            int n;
            while ((n = StreamIo.Send(a.Handle, chunk)) > 0)
                total += n;
            Assert.Equal(StreamIo.WouldBlock, n);
            Assert.True(total > 0);
        }
    }
}
