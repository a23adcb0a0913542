using Vsock.Device.VhostUser;

namespace Vsock.Device.Tests.VhostUser;

public sealed class VhostUserReplyQueueTests
{
    private readonly FakeTransport _transport = new();

    private static byte[] Reply(byte fill, int length = 20) => Enumerable.Repeat(fill, length).ToArray();

    [Fact]
    public void A_reply_the_socket_takes_is_not_kept()
    {
        var queue = new VhostUserReplyQueue(_transport);
        queue.Send(Reply(1));
        Assert.True(queue.IsEmpty);
        Assert.Equal(Reply(1), Assert.Single(_transport.Sent));
    }

    [Fact]
    public void A_partial_send_keeps_the_rest_and_flushes_resume_inside_a_reply_in_order()
    {
        var queue = new VhostUserReplyQueue(_transport);
        _transport.SendRoom = 7;
        queue.Send(Reply(1));
        queue.Send(Reply(2));
        queue.Send(Reply(3));
        Assert.Equal(3, queue.Count);
        Assert.Equal(60 - 7, queue.Bytes);
        Assert.False(queue.Flush()); // still no room

        _transport.SendRoom = 20; // the VMM read a little
        Assert.False(queue.Flush());
        Assert.Equal(2, queue.Count); // the first reply is out, 7 bytes of the second too
        Assert.Equal(60 - 27, queue.Bytes);

        _transport.SendRoom = long.MaxValue;
        Assert.True(queue.Flush());
        Assert.True(queue.IsEmpty);
        Assert.Equal(0, queue.Bytes);
        Assert.Equal([.. Reply(1), .. Reply(2), .. Reply(3)], _transport.SentBytes.ToArray());
    }

    [Fact]
    public void More_than_the_bound_waiting_is_an_error_that_ends_the_session()
    {
        var queue = new VhostUserReplyQueue(_transport);
        _transport.SendRoom = 0;
        for (var i = 0; i < VhostUserReplyQueue.MaxReplies; i++)
            queue.Send(Reply((byte)i, VhostUserCodec.MaxMessageSize));
        Assert.Equal(VhostUserReplyQueue.MaxReplies, queue.Count);
        Assert.Equal(VhostUserReplyQueue.MaxBytes, queue.Bytes);
        var e = Assert.Throws<VhostUserProtocolException>(() => queue.Send(Reply(99)));
        Assert.Equal(VhostUserError.RepliesNotRead, e.Error);
        Assert.False(e.IsRejection);
        Assert.Equal(VhostUserReplyQueue.MaxReplies, queue.Count);
    }

    [Fact]
    public void A_vanished_vmm_surfaces_as_an_IOException()
    {
        var queue = new VhostUserReplyQueue(_transport);
        _transport.SendFailure = new IOException("EPIPE");
        Assert.Throws<IOException>(() => queue.Send(Reply(1)));
    }
}
