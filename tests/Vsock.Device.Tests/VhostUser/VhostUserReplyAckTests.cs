using Vsock.Device.VhostUser;
using P = Vsock.Device.VhostUser.VhostUserProtocolFeatures;
using R = Vsock.Device.VhostUser.VhostUserRequest;

namespace Vsock.Device.Tests.VhostUser;

public sealed class VhostUserReplyAckTests : IDisposable
{
    private readonly SessionHarness _h = new();

    public void Dispose() => _h.Dispose();

    private void NegotiateReplyAck() => _h.NegotiateProtocol(P.Bit(P.ReplyAck) | P.Bit(P.Mq) | P.Bit(P.Config));

    [Fact]
    public void Success_is_acknowledged_with_0()
    {
        NegotiateReplyAck();
        var reply = _h.Send(R.SetMemTable, Frontend.MemTable(Frontend.Region(0, 0x10000, 0x10000)), needReply: true, fds: _h.Fds.Open());
        var (header, _) = Frontend.ParseReply(reply);
        Assert.Equal(R.SetMemTable, header.Request);
        Assert.Equal(0UL, Frontend.ReplyU64(reply));
    }

    [Fact]
    public void The_request_negotiating_reply_ack_is_acknowledged()
    {
        var reply = _h.Send(R.SetProtocolFeatures, Frontend.U64(P.Bit(P.ReplyAck)), needReply: true);
        Assert.Equal(0UL, Frontend.ReplyU64(reply));
    }

    [Fact]
    public void A_refusal_is_acknowledged_with_1_and_changes_nothing()
    {
        NegotiateReplyAck();
        _h.Send(R.SetVringNum, Frontend.State(0, 128));
        Assert.Equal(1UL, Frontend.ReplyU64(_h.Send(R.SetVringNum, Frontend.State(0, 3), needReply: true)));
        Assert.Equal(1UL, Frontend.ReplyU64(_h.Send(R.SetFeatures, Frontend.U64(1UL << 63), needReply: true)));
        Assert.Equal(1UL, Frontend.ReplyU64(_h.Send(R.SetVringAddr, Frontend.Addr(0, 0, 0, 0), needReply: true)));
        Assert.Contains(_h.Log, l => l.Contains("acknowledged as failed"));
        // The session carries on.
        Assert.Equal(RecordingBackend.VsockFeatures, Frontend.ReplyU64(_h.Send(R.GetFeatures)));
        Assert.Equal(0UL, _h.Session.AckedFeatures);
    }

    [Fact]
    public void Refused_kick_with_an_ack_still_closes_the_fd()
    {
        NegotiateReplyAck();
        var fd = _h.Fds.Open();
        Assert.Equal(1UL, Frontend.ReplyU64(_h.Send(R.SetVringKick, Frontend.U64(7), needReply: true, fds: fd)));
        Assert.True(fd.IsClosed);
    }

    [Fact]
    public void No_ack_without_need_reply()
    {
        NegotiateReplyAck();
        Assert.Empty(_h.Send(R.SetOwner));
        // ... so a refusal cannot be reported and ends the session.
        _h.Refused(VhostUserError.BadRingConfig, R.SetVringNum, Frontend.State(0, 3));
    }

    [Fact]
    public void No_ack_when_reply_ack_was_not_negotiated()
    {
        _h.NegotiateProtocol(P.Bit(P.Mq));
        Assert.Empty(_h.Send(R.SetOwner, needReply: true));
        _h.Refused(VhostUserError.BadRingConfig, R.SetVringNum, Frontend.State(0, 3), needReply: true);
    }

    [Fact]
    public void Malformed_messages_end_the_session_even_when_a_reply_was_asked_for()
    {
        NegotiateReplyAck();
        _h.Refused(VhostUserError.BadPayloadSize, R.SetVringNum, new byte[7], needReply: true);
        _h.Refused(VhostUserError.BadFdCount, R.SetVringCall, Frontend.U64(0), needReply: true);
        _h.Refused(VhostUserError.UnsupportedRequest, R.SetLogBase, new byte[16], needReply: true);
    }

    [Fact]
    public void Requests_with_their_own_reply_send_only_that()
    {
        NegotiateReplyAck();
        Assert.Equal(RecordingBackend.VsockFeatures, Frontend.ReplyU64(_h.Send(R.GetFeatures, needReply: true)));
        Assert.Equal(3UL, Frontend.ReplyU64(_h.Send(R.GetQueueNum, needReply: true)));
        Assert.Equal(20, _h.Send(R.GetVringBase, Frontend.State(0, 0), needReply: true).Length);
        // A refused GET_VRING_BASE cannot be answered with an ack: it ends the session.
        _h.Refused(VhostUserError.BadRingIndex, R.GetVringBase, Frontend.State(9, 0), needReply: true);
    }
}
