using Vsock.Device.VhostUser;
using R = Vsock.Device.VhostUser.VhostUserRequest;

namespace Vsock.Device.Tests.VhostUser;

/// <summary>The VMM connection driven by readiness, over an in-memory transport and a clock the test moves.</summary>
public sealed class VmmConnectionTests : IDisposable
{
    private readonly FakeTransport _transport = new();
    private readonly RecordingBackend _backend = new();
    private readonly NativeMemoryMapper _mapper = new();
    private readonly TestFds _fds = new();
    private readonly ManualTimeProvider _clock = new();
    private readonly VmmConnection _vmm;

    public VmmConnectionTests()
    {
        _vmm = new VmmConnection(_transport, new VhostUserSession(_backend, _mapper), VmmTimeouts.Default, _clock);
    }

    public void Dispose() => _vmm.Dispose();

    private static byte[] GetFeatures() => Frontend.Encode(R.GetFeatures);

    [Fact]
    public void Handles_the_requests_that_are_complete_and_sends_their_replies()
    {
        _transport.Enqueue([.. GetFeatures(), .. Frontend.Encode(R.SetOwner), .. GetFeatures()]);
        Assert.Equal(VmmReadResult.Drained, _vmm.OnReadable());
        Assert.Equal(2, _transport.Sent.Count);
        Assert.Equal(RecordingBackend.VsockFeatures, Frontend.ReplyU64(_transport.Sent[0]));
        Assert.True(_vmm.Session.Owned);
        Assert.False(_vmm.WantsWritable);
        Assert.Null(_vmm.PartialMessageSince);
        Assert.Null(_vmm.NextStallCheck);
    }

    [Fact]
    public void A_chatty_vmm_gets_a_bounded_number_of_requests_per_call()
    {
        for (var i = 0; i < 2 * VmmConnection.MessagesPerReadable + 3; i++)
            _transport.Enqueue(GetFeatures());
        Assert.Equal(VmmReadResult.BudgetExhausted, _vmm.OnReadable());
        Assert.Equal(VmmConnection.MessagesPerReadable, _transport.Sent.Count);
        Assert.Equal(VmmReadResult.BudgetExhausted, _vmm.OnReadable());
        Assert.Equal(VmmReadResult.Drained, _vmm.OnReadable());
        Assert.Equal(2 * VmmConnection.MessagesPerReadable + 3, _transport.Sent.Count);
    }

    [Fact]
    public void A_hang_up_between_requests_is_closed()
    {
        _transport.Enqueue(GetFeatures());
        _transport.Complete();
        Assert.Equal(VmmReadResult.Closed, _vmm.OnReadable());
        Assert.Single(_transport.Sent); // the request before the hang-up was still answered
    }

    [Fact]
    public void A_partial_request_is_kept_and_its_deadline_runs_from_the_first_byte_whatever_follows()
    {
        var bytes = Frontend.Encode(R.SetVringNum, Frontend.State(0, 128));
        var start = _clock.GetTimestamp();
        _transport.Enqueue(bytes[..5]);
        Assert.Equal(VmmReadResult.Drained, _vmm.OnReadable());
        Assert.Equal(start, _vmm.PartialMessageSince);
        Assert.Equal(VmmTimeouts.Default.PartialMessage, _vmm.NextStallCheck);

        // A byte now and then (a trickling VMM) does not move the deadline.
        for (var i = 5; i < 15; i++)
        {
            _clock.Advance(TimeSpan.FromMilliseconds(450));
            _transport.Enqueue([bytes[i]]);
            Assert.Equal(VmmReadResult.Drained, _vmm.OnReadable());
            Assert.Equal(start, _vmm.PartialMessageSince);
            Assert.Equal(VmmStall.None, _vmm.CheckStall());
        }
        Assert.Equal(TimeSpan.FromMilliseconds(500), _vmm.NextStallCheck);
        _clock.Advance(TimeSpan.FromMilliseconds(499));
        Assert.Equal(VmmStall.None, _vmm.CheckStall());
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(VmmStall.PartialMessage, _vmm.CheckStall());
        Assert.Equal(TimeSpan.Zero, _vmm.NextStallCheck);
        Assert.Contains("part of a request", _vmm.Describe(VmmStall.PartialMessage));
    }

    [Fact]
    public void A_request_completed_in_time_clears_the_deadline()
    {
        var bytes = Frontend.Encode(R.GetFeatures);
        _transport.Enqueue(bytes[..3]);
        _vmm.OnReadable();
        _clock.Advance(TimeSpan.FromSeconds(4));
        _transport.Enqueue([.. bytes[3..], .. GetFeatures()[..2]]); // the rest, and the start of the next request
        _vmm.OnReadable();
        Assert.Single(_transport.Sent);
        Assert.Equal(_clock.GetTimestamp(), _vmm.PartialMessageSince); // the next request's own deadline
        _transport.Enqueue(GetFeatures()[2..]);
        _vmm.OnReadable();
        Assert.Null(_vmm.PartialMessageSince);
        _clock.Advance(TimeSpan.FromSeconds(60));
        Assert.Equal(VmmStall.None, _vmm.CheckStall());
    }

    [Fact]
    public void Replies_the_socket_does_not_take_wait_for_writability_and_flush_in_order()
    {
        _transport.SendRoom = 30;
        _transport.Enqueue([.. GetFeatures(), .. GetFeatures(), .. GetFeatures()]);
        Assert.Equal(VmmReadResult.Drained, _vmm.OnReadable());
        Assert.True(_vmm.WantsWritable);
        Assert.Equal(2, _vmm.QueuedReplies);
        var blocked = _clock.GetTimestamp();
        Assert.Equal(blocked, _vmm.RepliesBlockedSince);

        _clock.Advance(TimeSpan.FromSeconds(1));
        _transport.SendRoom = 5;
        _vmm.OnWritable(); // progress, but replies still wait: the deadline stays
        Assert.True(_vmm.WantsWritable);
        Assert.Equal(blocked, _vmm.RepliesBlockedSince);

        _transport.SendRoom = long.MaxValue;
        _vmm.OnWritable();
        Assert.False(_vmm.WantsWritable);
        Assert.Null(_vmm.RepliesBlockedSince);
        var replies = _transport.SentBytes.ToArray();
        Assert.Equal(60, replies.Length);
        for (var i = 0; i < 3; i++)
            Assert.Equal(RecordingBackend.VsockFeatures, Frontend.ReplyU64(replies.AsSpan(i * 20, 20)));
    }

    [Fact]
    public void Replies_left_unread_past_the_deadline_are_a_stall()
    {
        _transport.SendRoom = 0;
        _transport.Enqueue(GetFeatures());
        _vmm.OnReadable();
        Assert.Equal(VmmTimeouts.Default.UnreadReplies, _vmm.NextStallCheck);
        _clock.Advance(VmmTimeouts.Default.UnreadReplies - TimeSpan.FromTicks(1));
        Assert.Equal(VmmStall.None, _vmm.CheckStall());
        _clock.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(VmmStall.UnreadReplies, _vmm.CheckStall());
        Assert.Contains("1 replies (20 bytes) unread", _vmm.Describe(VmmStall.UnreadReplies));
    }

    [Fact]
    public void A_vmm_that_never_reads_is_refused_past_the_reply_bound()
    {
        _transport.SendRoom = 0;
        for (var i = 0; i < 3 * VhostUserReplyQueue.MaxReplies; i++)
            _transport.Enqueue(GetFeatures());
        var e = Assert.Throws<VhostUserProtocolException>(ReadUntilItThrows);
        Assert.Equal(VhostUserError.RepliesNotRead, e.Error);
        Assert.Equal(VhostUserReplyQueue.MaxReplies, _vmm.QueuedReplies);
    }

    private void ReadUntilItThrows()
    {
        for (var i = 0; i < 100; i++)
            _vmm.OnReadable();
    }

    [Fact]
    public void Protocol_errors_reach_the_owner()
    {
        var bytes = GetFeatures();
        bytes[4] = 2; // version 2
        _transport.Enqueue(bytes);
        Assert.Equal(VhostUserError.BadHeader, Assert.Throws<VhostUserProtocolException>(() => _vmm.OnReadable()).Error);
    }

    [Fact]
    public void Dispose_releases_everything_whatever_the_state()
    {
        // Memory mapped, a reply waiting, half a request with an fd held.
        _transport.SendRoom = 0;
        _transport.Enqueue(Frontend.Encode(R.SetMemTable, Frontend.MemTable(Frontend.Region(0, 0x10000, 0x7f00_0000_0000))), _fds.Open());
        _transport.Enqueue(GetFeatures());
        _transport.Enqueue(Frontend.Encode(R.SetVringKick, Frontend.U64(0))[..10], _fds.Open());
        _vmm.OnReadable();
        Assert.Equal(1, _mapper.Live);
        Assert.True(_vmm.WantsWritable);
        Assert.NotNull(_vmm.PartialMessageSince);

        _vmm.Dispose();
        Assert.Equal(0, _mapper.Live);
        Assert.Equal(0, _fds.StillOpen);
        Assert.True(_transport.Disposed);
        Assert.Equal("Reset", _backend.Calls[^2]);
        Assert.Throws<ObjectDisposedException>(() => _vmm.OnReadable());
        _vmm.Dispose();
    }
}
