using Vsock.Device.Interop;

namespace Vsock.Device.Tests.Interop;

/// <summary>
/// What the SEQPACKET data path relies on from Linux, on real unix SOCK_SEQPACKET sockets: the peeked length, whole
/// messages, MSG_TRUNC, empty messages and end of stream, the send-buffer limit, and no mixing of socket types.
/// </summary>
public sealed unsafe class MessageIoTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("vsock-seqpacket-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void A_truncating_peek_gives_the_next_message_s_length_without_taking_it()
    {
        var (a, b) = UnixSocket.Pair(SocketKind.Seqpacket);
        using (a)
        using (b)
        {
            Assert.Equal(MessageIo.WouldBlock, MessageIo.PeekLength(b.Handle));
            Assert.Equal(5000, MessageIo.Send(a.Handle, new byte[5000]));
            Assert.Equal(3, MessageIo.Send(a.Handle, "abc"u8));
            Assert.Equal(5000, MessageIo.PeekLength(b.Handle));
            Assert.Equal(5000, MessageIo.PeekLength(b.Handle));
            Assert.Equal(5003, MessageIo.QueuedBytes(b.Handle));
            Assert.Equal(5000, MessageIo.Discard(b.Handle));
            Assert.Equal(3, MessageIo.PeekLength(b.Handle));
        }
    }

    [Fact]
    public void A_receive_takes_one_whole_message_and_says_truncated_when_the_buffers_are_short()
    {
        var (a, b) = UnixSocket.Pair(SocketKind.Seqpacket);
        using (a)
        using (b)
        {
            MessageIo.Send(a.Handle, "hello world"u8, endOfRecord: true);
            MessageIo.Send(a.Handle, "next"u8);
            var buffer = new byte[5];
            fixed (byte* p = buffer)
            {
                var iov = new IoVec { Base = p, Length = 5 };
                Assert.Equal(5, MessageIo.Receive(b.Handle, &iov, 1, out var flags));
                Assert.NotEqual(0, flags & Libc.MSG_TRUNC);
                Assert.Equal(0, flags & Libc.MSG_EOR); // unix sockets drop MSG_EOR
                Assert.Equal(4, MessageIo.Receive(b.Handle, &iov, 1, out flags));
                Assert.Equal(0, flags);
            }
            Assert.Equal("next"u8.ToArray(), buffer[..4]);
        }
    }

    [Fact]
    public void An_empty_message_peeks_as_0_like_the_end_of_stream_and_the_shutdown_and_queue_tell_them_apart()
    {
        var (a, b) = UnixSocket.Pair(SocketKind.Seqpacket);
        using (a)
        using (b)
        {
            MessageIo.Send(a.Handle, ReadOnlySpan<byte>.Empty);
            Assert.Equal(0, MessageIo.PeekLength(b.Handle));
            Assert.False(MessageIo.PeerShutDown(b.Handle));
            MessageIo.Send(a.Handle, "x"u8);
            a.Shutdown();
            Assert.Equal(0, MessageIo.PeekLength(b.Handle));
            Assert.True(MessageIo.PeerShutDown(b.Handle));
            Assert.Equal(1, MessageIo.QueuedBytes(b.Handle));
            Assert.Equal(0, MessageIo.Discard(b.Handle));
            Assert.Equal(1, MessageIo.PeekLength(b.Handle));
            Assert.Equal(1, MessageIo.Discard(b.Handle));
            Assert.Equal(0, MessageIo.PeekLength(b.Handle));
            Assert.Equal(0, MessageIo.QueuedBytes(b.Handle));
        }
    }

    [Fact]
    public void A_message_beyond_the_send_buffer_is_refused_whole_and_the_limit_is_what_SetSendBuffer_says()
    {
        var (a, b) = UnixSocket.Pair(SocketKind.Seqpacket);
        using (a)
        using (b)
        {
            var largest = MessageIo.SetSendBuffer(a.Handle, 100_000);
            Assert.InRange(largest, 100_000, int.MaxValue);
            Assert.Equal(-Errno.EMSGSIZE, MessageIo.Send(a.Handle, new byte[largest + 1]));
            Assert.Equal(largest, MessageIo.Send(a.Handle, new byte[largest]));
            Assert.Equal(largest, MessageIo.PeekLength(b.Handle));
        }
    }

    [Theory]
    [InlineData(SocketKind.Stream, SocketKind.Seqpacket)]
    [InlineData(SocketKind.Seqpacket, SocketKind.Stream)]
    public void A_connect_to_a_listener_of_the_other_type_is_refused_at_once(SocketKind listening, SocketKind connecting)
    {
        var path = Path.Combine(_dir.FullName, "l.sock");
        using var listener = UnixSocket.Listen(path, kind: listening);
        var error = Assert.Throws<LinuxException>(() => UnixSocket.Connect(path, connecting).Dispose());
        Assert.Equal(Errno.EPROTOTYPE, error.Errno);
        using var same = UnixSocket.Connect(path, listening);
    }

    [Fact]
    public void A_seqpacket_socket_is_writable_until_its_peer_s_queue_is_full()
    {
        var (a, b) = UnixSocket.Pair(SocketKind.Seqpacket);
        using (a)
        using (b)
        {
            Assert.True(MessageIo.Writable(a.Handle));
            MessageIo.SetSendBuffer(a.Handle, 4096);
            var sent = 0;
            while (MessageIo.Send(a.Handle, new byte[1000]) > 0)
                sent++;
            Assert.InRange(sent, 1, 1000);
            Assert.False(MessageIo.Writable(a.Handle));
        }
    }
}
