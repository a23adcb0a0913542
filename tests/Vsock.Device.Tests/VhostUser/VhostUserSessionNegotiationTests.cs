using System.Runtime.InteropServices;
using Vsock.Device.VhostUser;
using P = Vsock.Device.VhostUser.VhostUserProtocolFeatures;
using R = Vsock.Device.VhostUser.VhostUserRequest;

namespace Vsock.Device.Tests.VhostUser;

/// <summary>Features, ownership, resets, config space, status, queue count, unsupported requests.</summary>
public sealed class VhostUserSessionNegotiationTests : IDisposable
{
    private readonly SessionHarness _h = new();

    public void Dispose() => _h.Dispose();

    [Fact]
    public void Get_features_answers_the_backend_offer_at_any_time()
    {
        Assert.Equal(RecordingBackend.VsockFeatures, Frontend.ReplyU64(_h.Send(R.GetFeatures)));
        _h.StartRing();
        Assert.Equal(RecordingBackend.VsockFeatures, Frontend.ReplyU64(_h.Send(R.GetFeatures)));
    }

    [Fact]
    public void Get_features_with_a_payload_is_malformed()
    {
        _h.Refused(VhostUserError.BadPayloadSize, R.GetFeatures, new byte[8]);
    }

    [Fact]
    public void Get_protocol_features_answers_the_backend_offer()
    {
        _h.Backend.ProtocolFeatures = P.Bit(P.Mq) | P.Bit(P.Config);
        using var h = new SessionHarness(_h.Backend);
        Assert.Equal(0x201UL, Frontend.ReplyU64(h.Send(R.GetProtocolFeatures)));
    }

    [Fact]
    public void Set_protocol_features_records_an_offered_subset()
    {
        _h.NegotiateProtocol(P.Bit(P.Mq) | P.Bit(P.Config));
        Assert.Equal(0x201UL, _h.Session.AckedProtocolFeatures);
    }

    [Fact]
    public void Set_protocol_features_with_bits_not_offered_is_refused()
    {
        var e = _h.Refused(VhostUserError.BadFeatures, R.SetProtocolFeatures, Frontend.U64(P.Bit(P.BackendReq)));
        Assert.True(e.IsRejection);
        Assert.Equal(0UL, _h.Session.AckedProtocolFeatures);
    }

    [Fact]
    public void Set_features_tells_the_backend()
    {
        _h.AckFeatures(RecordingBackend.VsockFeatures);
        Assert.Equal(RecordingBackend.VsockFeatures, _h.Session.AckedFeatures);
        Assert.Equal(RecordingBackend.VsockFeatures, _h.Backend.AckedFeatures);
    }

    [Fact]
    public void Set_features_with_bits_not_offered_is_refused()
    {
        var e = _h.Refused(VhostUserError.BadFeatures, R.SetFeatures, Frontend.U64(RecordingBackend.VsockFeatures | (1UL << 28)));
        Assert.Contains("0x10000000", e.Message);
        Assert.Null(_h.Backend.AckedFeatures);
        Assert.Equal(0UL, _h.Session.AckedFeatures);
    }

    [Fact]
    public void Without_protocol_features_set_features_enables_every_ring()
    {
        _h.SetMemory();
        _h.ConfigureRing(0);
        _h.Kick(0);
        Assert.Empty(_h.Backend.Running); // kicked but disabled
        _h.AckFeatures(RecordingBackend.VsockFeatures & ~(1UL << 30));
        Assert.True(_h.Backend.Running.ContainsKey(0));
        // ... and SET_VRING_ENABLE is then not part of the protocol.
        _h.Refused(VhostUserError.NotAllowed, R.SetVringEnable, Frontend.State(0, 0));
    }

    [Fact]
    public void Set_owner_twice_is_accepted()
    {
        Assert.False(_h.Session.Owned);
        Assert.Empty(_h.Send(R.SetOwner));
        Assert.Empty(_h.Send(R.SetOwner));
        Assert.True(_h.Session.Owned);
        Assert.Contains(_h.Log, l => l.Contains("SET_OWNER again"));
    }

    [Fact]
    public void Reset_owner_stops_everything_but_keeps_memory_and_protocol_features()
    {
        _h.Send(R.SetOwner);
        _h.StartRing(0);
        var kick = _h.Backend.Running[0].KickFd!;
        var err = _h.Fds.Open();
        _h.Send(R.SetVringErr, Frontend.U64(1), fds: err);

        Assert.Empty(_h.Send(R.ResetOwner));

        Assert.Contains("Reset", _h.Backend.Calls);
        Assert.Empty(_h.Backend.Running);
        Assert.True(kick.IsClosed);
        Assert.True(err.IsClosed);
        Assert.False(_h.Session.Owned);
        Assert.Equal(0UL, _h.Session.AckedFeatures);
        Assert.Equal(VhostUserSession.SupportedProtocolFeatures, _h.Session.AckedProtocolFeatures);
        Assert.Single(_h.Session.Memory.Regions);
        // Rings are back to their initial state: a kick and enable alone no longer start ring 0.
        _h.AckFeatures();
        _h.Kick(0);
        _h.Enable(0);
        Assert.Empty(_h.Backend.Running);
        _h.ConfigureRing(0);
        Assert.True(_h.Backend.Running.ContainsKey(0));
    }

    [Fact]
    public void Reset_device_resets_but_keeps_ownership()
    {
        _h.Send(R.SetOwner);
        _h.StartRing(1);
        Assert.Empty(_h.Send(R.ResetDevice));
        Assert.Contains("Reset", _h.Backend.Calls);
        Assert.Empty(_h.Backend.Running);
        Assert.True(_h.Session.Owned);
        Assert.Equal(0UL, _h.Session.AckedFeatures);
        Assert.NotEqual(0UL, _h.Session.AckedProtocolFeatures);
    }

    [Fact]
    public void Reset_device_needs_its_protocol_feature()
    {
        _h.NegotiateProtocol(P.Bit(P.Mq));
        _h.Refused(VhostUserError.UnsupportedRequest, R.ResetDevice);
    }

    [Fact]
    public void Get_queue_num_answers_the_queue_count_once_mq_is_negotiated()
    {
        _h.Refused(VhostUserError.UnsupportedRequest, R.GetQueueNum);
        _h.NegotiateProtocol(P.Bit(P.Mq));
        Assert.Equal(3UL, Frontend.ReplyU64(_h.Send(R.GetQueueNum)));
    }

    [Fact]
    public void Get_config_echoes_the_header_and_returns_the_guest_cid()
    {
        _h.NegotiateProtocol(P.Bit(P.Config));
        var reply = _h.Send(R.GetConfig, Frontend.Config(0, 8));
        var (header, payload) = Frontend.ParseReply(reply);
        Assert.Equal(R.GetConfig, header.Request);
        Assert.Equal(0x5u, header.Flags);
        Assert.Equal(12u + 8u, header.Size); // QEMU: msg.hdr.size must be VHOST_USER_CONFIG_HDR_SIZE + config_len
        var config = MemoryMarshal.Read<VhostUserConfigHeader>(payload);
        Assert.Equal(0u, config.Offset);
        Assert.Equal(8u, config.Size);
        Assert.Equal(3UL, BitConverter.ToUInt64(payload, 12));
    }

    [Fact]
    public void Get_config_of_part_of_the_space()
    {
        _h.NegotiateProtocol(P.Bit(P.Config));
        var (header, payload) = Frontend.ParseReply(_h.Send(R.GetConfig, Frontend.Config(0, 4)));
        Assert.Equal(16u, header.Size);
        Assert.Equal(3u, BitConverter.ToUInt32(payload, 12));
    }

    [Theory]
    [InlineData(0u, 9u)]
    [InlineData(8u, 1u)]
    [InlineData(4u, 8u)]
    [InlineData(uint.MaxValue, 4u)]
    [InlineData(0u, 0u)]
    public void Get_config_outside_the_space_replies_with_an_empty_payload(uint offset, uint size)
    {
        _h.NegotiateProtocol(P.Bit(P.Config));
        var (header, payload) = Frontend.ParseReply(_h.Send(R.GetConfig, Frontend.Config(offset, size)));
        Assert.Equal(12u, header.Size);
        var config = MemoryMarshal.Read<VhostUserConfigHeader>(payload);
        Assert.Equal(offset, config.Offset);
        Assert.Equal(0u, config.Size);
    }

    [Fact]
    public void Get_config_whose_header_disagrees_with_the_payload_is_malformed()
    {
        _h.NegotiateProtocol(P.Bit(P.Config));
        _h.Refused(VhostUserError.BadPayloadSize, R.GetConfig, Frontend.Config(0, 8)[..16]);
        _h.Refused(VhostUserError.BadPayloadSize, R.GetConfig, new byte[11]);
        _h.Refused(VhostUserError.BadPayload, R.GetConfig, Frontend.Config(0, 8, flags: 2));
    }

    [Fact]
    public void Config_requests_need_the_config_protocol_feature()
    {
        _h.Refused(VhostUserError.UnsupportedRequest, R.GetConfig, Frontend.Config(0, 8));
        _h.Refused(VhostUserError.UnsupportedRequest, R.SetConfig, Frontend.Config(0, 8));
    }

    [Fact]
    public void Set_config_is_accepted_and_ignored()
    {
        _h.NegotiateProtocol(P.Bit(P.Config) | P.Bit(P.ReplyAck));
        var reply = _h.Send(R.SetConfig, Frontend.Config(0, 8, data: BitConverter.GetBytes(99UL)), needReply: true);
        Assert.Equal(0UL, Frontend.ReplyU64(reply));
        var (_, payload) = Frontend.ParseReply(_h.Send(R.GetConfig, Frontend.Config(0, 8)));
        Assert.Equal(3UL, BitConverter.ToUInt64(payload, 12));
    }

    [Fact]
    public void Status_round_trips_without_side_effects()
    {
        _h.StartRing();
        Assert.Empty(_h.Send(R.SetStatus, Frontend.U64(0x0f)));
        Assert.Equal(0x0fUL, Frontend.ReplyU64(_h.Send(R.GetStatus)));
        Assert.Empty(_h.Send(R.SetStatus, Frontend.U64(0)));
        // QEMU 7.2 sends SET_STATUS 0 before GET_VRING_BASE: the ring must still be there to report its base.
        Assert.True(_h.Backend.Running.ContainsKey(0));
        Assert.Equal(0UL, Frontend.ReplyU64(_h.Send(R.GetStatus)));
    }

    [Fact]
    public void Status_beyond_a_byte_is_malformed_and_needs_the_feature()
    {
        _h.NegotiateProtocol(P.Bit(P.Status));
        _h.Refused(VhostUserError.BadPayload, R.SetStatus, Frontend.U64(0x100));
        _h.NegotiateProtocol(0);
        _h.Refused(VhostUserError.UnsupportedRequest, R.SetStatus, Frontend.U64(1));
        _h.Refused(VhostUserError.UnsupportedRequest, R.GetStatus);
    }

    [Theory]
    [InlineData(R.SetLogBase)]
    [InlineData(R.SetLogFd)]
    [InlineData(R.SetBackendReqFd)]
    [InlineData(R.IotlbMsg)]
    [InlineData(R.SetVringEndian)]
    [InlineData(R.GetInflightFd)]
    [InlineData(R.SetInflightFd)]
    [InlineData(R.VringKick)]
    [InlineData(R.SetDeviceStateFd)]
    [InlineData(R.None)]
    [InlineData((R)99)]
    public void Requests_not_offered_end_the_session_and_name_the_request(R request)
    {
        var fd = _h.Fds.Open();
        var e = _h.Refused(VhostUserError.UnsupportedRequest, request, new byte[8], fds: fd);
        Assert.False(e.IsRejection);
        Assert.StartsWith(VhostUserCodec.Name(request) + ":", e.Message);
        Assert.True(fd.IsClosed); // the message's disposal closed it
    }

    [Fact]
    public void Fds_on_a_request_that_takes_none_are_closed_and_the_request_served()
    {
        var fds = _h.Fds.Open(2);
        Assert.Equal(RecordingBackend.VsockFeatures, Frontend.ReplyU64(_h.Send(R.GetFeatures, fds: fds)));
        Assert.All(fds, fd => Assert.True(fd.IsClosed));
        var fd = _h.Fds.Open();
        _h.AckFeatures();
        Assert.Empty(_h.Send(R.SetProtocolFeatures, Frontend.U64(0), fds: fd));
        Assert.True(fd.IsClosed);
        Assert.Contains(_h.Log, l => l.StartsWith("SET_PROTOCOL_FEATURES: closing 1 fds"));
    }

    [Fact]
    public void Backend_offering_protocol_features_the_session_lacks_is_a_setup_error()
    {
        var backend = new RecordingBackend { ProtocolFeatures = P.Bit(P.LogShmfd) };
        Assert.Throws<ArgumentException>(() => new VhostUserSession(backend, new NativeMemoryMapper()));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VhostUserSession(new RecordingBackend { QueueCount = 0 }, new NativeMemoryMapper()));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VhostUserSession(new RecordingBackend { MaxQueueSize = 65536 }, new NativeMemoryMapper()));
    }

    [Fact]
    public void Reply_buffer_must_hold_the_largest_reply()
    {
        using var message = Frontend.Message(R.GetFeatures);
        Assert.Throws<ArgumentException>(() => _h.Session.Handle(message, new byte[100]));
    }

    [Fact]
    public void Dispose_resets_the_backend_and_releases_everything()
    {
        _h.StartRing(0);
        var err = _h.Fds.Open();
        _h.Send(R.SetVringErr, Frontend.U64(0), fds: err);
        var heldKick = _h.Kick(2); // ring 2 is kicked but never configured: the session holds the fd
        var call = _h.Fds.Open();
        _h.Send(R.SetVringCall, Frontend.U64(0), fds: call);

        _h.Session.Dispose();

        Assert.Contains("Reset", _h.Backend.Calls);
        Assert.Equal("MemoryChanged 0", _h.Backend.Calls[^1]);
        Assert.Same(Vsock.Device.Memory.GuestMemory.Empty, _h.Session.Memory);
        Assert.Equal(0, _h.Mapper.Live);
        Assert.Equal(0, _h.Fds.StillOpen);
        Assert.True(heldKick.IsClosed);
        using var message = Frontend.Message(R.GetFeatures);
        Assert.Throws<ObjectDisposedException>(() => _h.Session.Handle(message, new byte[VhostUserCodec.MaxMessageSize]));
        _h.Session.Dispose(); // idempotent
    }
}
