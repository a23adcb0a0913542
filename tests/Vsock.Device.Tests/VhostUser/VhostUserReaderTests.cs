using Vsock.Device.VhostUser;

namespace Vsock.Device.Tests.VhostUser;

public sealed class VhostUserReaderTests : IDisposable
{
    private readonly FakeTransport _transport = new();
    private readonly TestFds _fds = new();

    public void Dispose() => _transport.Dispose();

    [Fact]
    public void Reads_a_message_with_payload_and_fds()
    {
        var fd = _fds.Open();
        _transport.Enqueue(Frontend.Encode(VhostUserRequest.SetVringKick, Frontend.U64(1)), fd);
        using var message = new VhostUserReader(_transport).ReadMessage();
        Assert.NotNull(message);
        Assert.Equal(VhostUserRequest.SetVringKick, message.Request);
        Assert.Equal(Frontend.U64(1), message.Payload.ToArray());
        Assert.Same(fd, Assert.Single(message.Fds));
        Assert.False(message.NeedReply);
    }

    [Fact]
    public void Reassembles_a_message_delivered_one_byte_at_a_time()
    {
        _transport.MaxChunk = 1;
        var fds = _fds.Open(2);
        var payload = Frontend.MemTable(Frontend.Region(0, 0x1000, 0x10000), Frontend.Region(0x1000, 0x1000, 0x20000));
        _transport.Enqueue(Frontend.Encode(VhostUserRequest.SetMemTable, payload, needReply: true), fds);
        using var message = new VhostUserReader(_transport).ReadMessage();
        Assert.NotNull(message);
        Assert.Equal(VhostUserRequest.SetMemTable, message.Request);
        Assert.True(message.NeedReply);
        Assert.Equal(payload, message.Payload.ToArray());
        Assert.Equal(fds, message.Fds);
        Assert.Equal(VhostUserCodec.HeaderSize + payload.Length, _transport.ReceiveCalls);
    }

    [Fact]
    public void Collects_fds_that_arrive_with_the_payload()
    {
        var bytes = Frontend.Encode(VhostUserRequest.SetVringCall, Frontend.U64(0));
        var fd = _fds.Open();
        _transport.Enqueue(bytes[..12]);
        _transport.Enqueue(bytes[12..], fd);
        using var message = new VhostUserReader(_transport).ReadMessage();
        Assert.Same(fd, Assert.Single(message!.Fds));
    }

    [Fact]
    public void Never_reads_into_the_next_message()
    {
        var first = _fds.Open();
        var second = _fds.Open();
        _transport.Enqueue([.. Frontend.Encode(VhostUserRequest.SetVringKick, Frontend.U64(0)), .. Frontend.Encode(VhostUserRequest.SetVringKick, Frontend.U64(1))], first);
        var reader = new VhostUserReader(_transport);
        using var m1 = reader.ReadMessage();
        Assert.Same(first, Assert.Single(m1!.Fds));
        Assert.Equal(Frontend.U64(0), m1.Payload.ToArray());
        _transport.Enqueue(Frontend.Encode(VhostUserRequest.GetFeatures), second);
        using var m2 = reader.ReadMessage();
        Assert.Equal(Frontend.U64(1), m2!.Payload.ToArray());
        Assert.Empty(m2.Fds);
        using var m3 = reader.ReadMessage();
        Assert.Same(second, Assert.Single(m3!.Fds));
    }

    [Fact]
    public void Clean_end_of_stream_between_messages_is_null()
    {
        _transport.Enqueue(Frontend.Encode(VhostUserRequest.GetFeatures));
        var reader = new VhostUserReader(_transport);
        using var message = reader.ReadMessage();
        Assert.NotNull(message);
        Assert.Equal(VhostUserReadStatus.NeedMore, reader.TryRead(out _));
        _transport.Complete();
        Assert.Equal(VhostUserReadStatus.EndOfStream, reader.TryRead(out var none));
        Assert.Null(none);
        Assert.Null(reader.ReadMessage());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(19)]
    public void End_of_stream_inside_a_message_is_a_truncated_message_and_closes_its_fds(int length)
    {
        var fd = _fds.Open();
        _transport.Enqueue(Frontend.Encode(VhostUserRequest.SetVringKick, Frontend.U64(0))[..length], fd);
        _transport.Complete();
        var e = Assert.Throws<VhostUserProtocolException>(() => new VhostUserReader(_transport).ReadMessage());
        Assert.Equal(VhostUserError.TruncatedMessage, e.Error);
        Assert.True(fd.IsClosed);
    }

    [Fact]
    public void Bad_header_closes_fds()
    {
        var fd = _fds.Open();
        var bytes = Frontend.Encode(VhostUserRequest.SetVringKick, Frontend.U64(0));
        bytes[4] = 2; // version 2
        _transport.Enqueue(bytes, fd);
        var e = Assert.Throws<VhostUserProtocolException>(() => new VhostUserReader(_transport).ReadMessage());
        Assert.Equal(VhostUserError.BadHeader, e.Error);
        Assert.True(fd.IsClosed);
    }

    [Fact]
    public void Oversized_payload_is_refused_before_reading_it()
    {
        var bytes = Frontend.Encode(VhostUserRequest.SetConfig);
        BitConverter.TryWriteBytes(bytes.AsSpan(8), 0x10_0000u);
        _transport.Enqueue(bytes);
        var e = Assert.Throws<VhostUserProtocolException>(() => new VhostUserReader(_transport).ReadMessage());
        Assert.Equal(VhostUserError.BadHeader, e.Error);
        Assert.Equal(1, _transport.ReceiveCalls);
    }

    [Fact]
    public void Too_many_fds_are_refused_and_closed()
    {
        var fds = _fds.Open(VhostUserCodec.MaxFds + 1);
        _transport.Enqueue(Frontend.Encode(VhostUserRequest.SetMemTable, new byte[8]), fds);
        var e = Assert.Throws<VhostUserProtocolException>(() => new VhostUserReader(_transport).ReadMessage());
        Assert.Equal(VhostUserError.TooManyFds, e.Error);
        Assert.Equal(0, _fds.StillOpen);
    }

    [Fact]
    public void Exactly_the_fd_limit_is_accepted()
    {
        var fds = _fds.Open(VhostUserCodec.MaxFds);
        _transport.Enqueue(Frontend.Encode(VhostUserRequest.GetFeatures), fds);
        using (var message = new VhostUserReader(_transport).ReadMessage())
            Assert.Equal(VhostUserCodec.MaxFds, message!.Fds.Count);
        Assert.Equal(0, _fds.StillOpen); // disposing the message closed them
    }

    [Fact]
    public void A_message_split_at_every_byte_boundary_with_fds_on_different_pieces_is_read_whole()
    {
        var payload = Frontend.MemTable(Frontend.Region(0, 0x1000, 0x10000), Frontend.Region(0x1000, 0x1000, 0x20000));
        var bytes = Frontend.Encode(VhostUserRequest.SetMemTable, payload, needReply: true);
        var cases = 0;
        for (var first = 1; first < bytes.Length; first++)
        {
            for (var second = first; second < bytes.Length; second++)
            {
                // Two pieces when second == first, three otherwise; the fds ride on the first and the last piece.
                var cuts = second == first ? new[] { 0, first, bytes.Length } : new[] { 0, first, second, bytes.Length };
                var fds = _fds.Open(2);
                using var transport = new FakeTransport();
                var reader = new VhostUserReader(transport);
                for (var piece = 0; piece < cuts.Length - 1; piece++)
                {
                    var last = piece == cuts.Length - 2;
                    transport.Enqueue(bytes[cuts[piece]..cuts[piece + 1]], piece == 0 ? [fds[0]] : last ? [fds[1]] : []);
                    if (last)
                        break;
                    Assert.Equal(VhostUserReadStatus.NeedMore, reader.TryRead(out var none));
                    Assert.Null(none);
                    Assert.True(reader.HasPartialMessage);
                }
                Assert.Equal(VhostUserReadStatus.Message, reader.TryRead(out var message));
                using (message)
                {
                    Assert.Equal(VhostUserRequest.SetMemTable, message!.Request);
                    Assert.True(message.NeedReply);
                    Assert.Equal(payload, message.Payload.ToArray());
                    Assert.Equal(fds, message.Fds);
                }
                Assert.False(reader.HasPartialMessage);
                Assert.Equal(VhostUserReadStatus.NeedMore, reader.TryRead(out _));
                cases++;
            }
        }
        Assert.Equal(bytes.Length * (bytes.Length - 1) / 2, cases);
        Assert.Equal(0, _fds.StillOpen);
    }

    [Fact]
    public void A_message_arriving_a_byte_per_readiness_event_waits_with_need_more_between_bytes()
    {
        var bytes = Frontend.Encode(VhostUserRequest.SetVringCall, Frontend.U64(1));
        var fd = _fds.Open();
        var reader = new VhostUserReader(_transport);
        for (var i = 0; i < bytes.Length - 1; i++)
        {
            _transport.Enqueue([bytes[i]], i == 3 ? [fd] : []);
            Assert.Equal(VhostUserReadStatus.NeedMore, reader.TryRead(out _));
        }
        _transport.Enqueue([bytes[^1]]);
        Assert.Equal(VhostUserReadStatus.Message, reader.TryRead(out var message));
        using (message)
            Assert.Same(fd, Assert.Single(message!.Fds));
    }

    [Fact]
    public void Nothing_arrived_is_need_more_with_nothing_held()
    {
        var reader = new VhostUserReader(_transport);
        Assert.Equal(VhostUserReadStatus.NeedMore, reader.TryRead(out var message));
        Assert.Null(message);
        Assert.False(reader.HasPartialMessage);
    }

    [Fact]
    public void Several_messages_in_one_read_come_out_one_per_call()
    {
        _transport.Enqueue([.. Frontend.Encode(VhostUserRequest.GetFeatures), .. Frontend.Encode(VhostUserRequest.SetOwner), .. Frontend.Encode(VhostUserRequest.GetQueueNum)]);
        var reader = new VhostUserReader(_transport);
        foreach (var expected in new[] { VhostUserRequest.GetFeatures, VhostUserRequest.SetOwner, VhostUserRequest.GetQueueNum })
        {
            Assert.Equal(VhostUserReadStatus.Message, reader.TryRead(out var message));
            using (message)
                Assert.Equal(expected, message!.Request);
        }
        Assert.Equal(VhostUserReadStatus.NeedMore, reader.TryRead(out _));
    }

    [Theory]
    [InlineData(5)]  // mid-header
    [InlineData(12)] // header complete, no payload yet
    [InlineData(15)] // mid-payload
    public void End_of_stream_after_need_more_is_a_truncated_message_and_closes_the_fds_held(int length)
    {
        var fd = _fds.Open();
        var reader = new VhostUserReader(_transport);
        _transport.Enqueue(Frontend.Encode(VhostUserRequest.SetVringKick, Frontend.U64(0))[..length], fd);
        Assert.Equal(VhostUserReadStatus.NeedMore, reader.TryRead(out _));
        Assert.False(fd.IsClosed); // held for the rest of its message
        _transport.Complete();
        var e = Assert.Throws<VhostUserProtocolException>(() => reader.TryRead(out _));
        Assert.Equal(VhostUserError.TruncatedMessage, e.Error);
        Assert.Contains("1 fds received", e.Message);
        Assert.True(fd.IsClosed);
        Assert.False(reader.HasPartialMessage);
    }

    [Fact]
    public void Fds_without_a_message_are_held_then_closed_at_end_of_stream()
    {
        // Fds with no byte of their own (our fake can deliver them; a socket cannot) begin a message that never comes.
        var fds = _fds.Open(2);
        _transport.Enqueue([], fds);
        var reader = new VhostUserReader(_transport);
        Assert.Equal(VhostUserReadStatus.NeedMore, reader.TryRead(out _));
        Assert.True(reader.HasPartialMessage);
        _transport.Complete();
        var e = Assert.Throws<VhostUserProtocolException>(() => reader.TryRead(out _));
        Assert.Equal(VhostUserError.TruncatedMessage, e.Error);
        Assert.Equal(0, _fds.StillOpen);
    }

    [Fact]
    public void Disposing_the_reader_closes_the_fds_of_a_partial_message()
    {
        var fd = _fds.Open();
        var reader = new VhostUserReader(_transport);
        _transport.Enqueue(Frontend.Encode(VhostUserRequest.SetVringKick, Frontend.U64(0))[..14], fd);
        Assert.Equal(VhostUserReadStatus.NeedMore, reader.TryRead(out _));
        reader.Dispose();
        Assert.True(fd.IsClosed);
        Assert.Throws<ObjectDisposedException>(() => reader.TryRead(out _));
        reader.Dispose();
    }

    [Fact]
    public void Message_dispose_closes_only_fds_nobody_took()
    {
        var fds = _fds.Open(2);
        var message = Frontend.Message(VhostUserRequest.SetMemTable, fds: fds);
        var taken = message.TakeFd(1);
        Assert.Throws<InvalidOperationException>(() => message.TakeFd(1));
        message.Dispose();
        Assert.True(fds[0].IsClosed);
        Assert.False(taken.IsClosed);
        taken.Dispose();
    }
}
