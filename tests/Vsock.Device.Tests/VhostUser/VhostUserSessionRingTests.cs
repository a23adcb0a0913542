using System.Runtime.InteropServices;
using Vsock.Device.VhostUser;
using R = Vsock.Device.VhostUser.VhostUserRequest;

namespace Vsock.Device.Tests.VhostUser;

/// <summary>SET_VRING_NUM/ADDR/BASE/KICK/CALL/ERR/ENABLE, GET_VRING_BASE and when a ring starts.</summary>
public sealed class VhostUserSessionRingTests : IDisposable
{
    private const ulong U = SessionHarness.UserBase;
    private readonly SessionHarness _h = new();

    public VhostUserSessionRingTests()
    {
        _h.NegotiateProtocol(VhostUserSession.SupportedProtocolFeatures);
        _h.AckFeatures();
    }

    public void Dispose() => _h.Dispose();

    [Fact]
    public void Ring_starts_once_kicked_and_enabled_with_translated_addresses()
    {
        _h.SetMemory();
        _h.ConfigureRing(1, size: 256, nextAvail: 5);
        var kick = _h.Kick(1);
        Assert.Empty(_h.Backend.Running); // kicked, still disabled
        _h.Enable(1);
        var config = _h.Backend.Running[1];
        var (desc, avail, used) = SessionHarness.RingGpas(1);
        Assert.Equal(new VringConfig(1, 256, desc, avail, used, 5, EventIdx: true, IndirectDescriptors: false, NotifyOnEmpty: true, kick), config);
        Assert.False(kick.IsClosed); // the backend owns it now
        Assert.Single(_h.Backend.Starts);
    }

    [Fact]
    public void Enable_before_kick_starts_on_the_kick()
    {
        _h.SetMemory();
        _h.ConfigureRing(0);
        _h.Enable(0);
        Assert.Empty(_h.Backend.Running);
        _h.Kick(0);
        Assert.True(_h.Backend.Running.ContainsKey(0));
    }

    [Fact]
    public void No_fd_kick_means_polling()
    {
        _h.SetMemory();
        _h.ConfigureRing(0);
        _h.Send(R.SetVringKick, Frontend.U64(0x100));
        _h.Enable(0);
        Assert.Null(_h.Backend.Running[0].KickFd);
    }

    [Fact]
    public void Ring_needs_size_and_addresses()
    {
        _h.SetMemory();
        _h.Kick(0);
        _h.Enable(0);
        _h.Send(R.SetVringNum, Frontend.State(0, 64));
        Assert.Empty(_h.Backend.Running);
        var (desc, avail, used) = SessionHarness.RingGpas(0);
        _h.Send(R.SetVringAddr, Frontend.Addr(0, U + desc, U + used, U + avail));
        Assert.Equal(64, _h.Backend.Running[0].Size);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(3u)]
    [InlineData(100u)]
    [InlineData(2048u)] // above the backend's 1024
    [InlineData(uint.MaxValue)]
    public void Ring_size_must_be_a_power_of_two_up_to_the_maximum(uint size)
    {
        var e = _h.Refused(VhostUserError.BadRingConfig, R.SetVringNum, Frontend.State(0, size));
        Assert.True(e.IsRejection);
    }

    [Fact]
    public void Maximum_and_minimum_ring_sizes_are_accepted()
    {
        Assert.Empty(_h.Send(R.SetVringNum, Frontend.State(0, 1)));
        Assert.Empty(_h.Send(R.SetVringNum, Frontend.State(0, 1024)));
    }

    [Theory]
    [InlineData(R.SetVringNum)]
    [InlineData(R.SetVringBase)]
    [InlineData(R.SetVringEnable)]
    [InlineData(R.GetVringBase)]
    public void Ring_index_beyond_the_queue_count_is_refused(R request)
    {
        var e = _h.Refused(VhostUserError.BadRingIndex, request, Frontend.State(3, 1));
        Assert.Contains("ring 3", e.Message);
    }

    [Fact]
    public void Ring_addresses_outside_memory_are_refused()
    {
        var (desc, avail, used) = SessionHarness.RingGpas(0);
        // No memory table yet: nothing translates.
        _h.Refused(VhostUserError.BadRingAddress, R.SetVringAddr, Frontend.Addr(0, U + desc, U + used, U + avail));
        _h.SetMemory();
        var e = _h.Refused(VhostUserError.BadRingAddress, R.SetVringAddr, Frontend.Addr(0, U + desc, U + SessionHarness.RamSize, U + avail));
        Assert.Contains("used ring", e.Message);
        _h.Refused(VhostUserError.BadRingAddress, R.SetVringAddr, Frontend.Addr(0, desc, U + used, U + avail));
    }

    [Theory]
    [InlineData(8UL, 0UL, 0UL)] // descriptor table needs 16
    [InlineData(0UL, 1UL, 0UL)] // available ring needs 2
    [InlineData(0UL, 0UL, 2UL)] // used ring needs 4
    public void Misaligned_ring_addresses_are_refused(ulong descOffset, ulong availOffset, ulong usedOffset)
    {
        _h.SetMemory();
        var (desc, avail, used) = SessionHarness.RingGpas(0);
        var e = _h.Refused(VhostUserError.BadRingAddress, R.SetVringAddr,
            Frontend.Addr(0, U + desc + descOffset, U + used + usedOffset, U + avail + availOffset));
        Assert.Contains("aligned", e.Message);
    }

    [Fact]
    public void Unknown_ring_address_flags_are_malformed_but_the_log_flag_is_accepted()
    {
        _h.SetMemory();
        var (desc, avail, used) = SessionHarness.RingGpas(0);
        _h.Refused(VhostUserError.BadPayload, R.SetVringAddr, Frontend.Addr(0, U + desc, U + used, U + avail, flags: 2));
        Assert.Empty(_h.Send(R.SetVringAddr, Frontend.Addr(0, U + desc, U + used, U + avail, flags: 1)));
        _h.Refused(VhostUserError.BadPayloadSize, R.SetVringAddr, Frontend.Addr(0, U + desc, U + used, U + avail)[..32]);
    }

    [Fact]
    public void Base_must_fit_sixteen_bits()
    {
        _h.Refused(VhostUserError.BadRingConfig, R.SetVringBase, Frontend.State(0, 0x10000));
        Assert.Empty(_h.Send(R.SetVringBase, Frontend.State(0, 0xffff)));
    }

    [Fact]
    public void A_running_ring_cannot_be_resized_moved_or_rebased()
    {
        _h.StartRing(0);
        var (desc, avail, used) = SessionHarness.RingGpas(0);
        Assert.Empty(_h.Send(R.SetVringNum, Frontend.State(0, 128))); // the same values are harmless
        Assert.Empty(_h.Send(R.SetVringAddr, Frontend.Addr(0, U + desc, U + used, U + avail)));
        _h.Refused(VhostUserError.BadRingConfig, R.SetVringNum, Frontend.State(0, 64));
        _h.Refused(VhostUserError.BadRingConfig, R.SetVringAddr, Frontend.Addr(0, U + desc + 0x10000, U + used, U + avail));
        _h.Refused(VhostUserError.BadRingConfig, R.SetVringBase, Frontend.State(0, 0));
        Assert.Equal(128, _h.Backend.Running[0].Size);
    }

    [Fact]
    public void Get_vring_base_stops_a_running_ring_and_reports_where_it_stopped()
    {
        _h.StartRing(1);
        var kick = _h.Backend.Running[1].KickFd!;
        var reply = _h.Send(R.GetVringBase, Frontend.State(1, 0));
        var (header, payload) = Frontend.ParseReply(reply);
        Assert.Equal(R.GetVringBase, header.Request);
        Assert.Equal(0x5u, header.Flags);
        Assert.Equal(8u, header.Size);
        var state = MemoryMarshal.Read<VhostUserVringState>(payload);
        Assert.Equal(1u, state.Index);
        Assert.Equal(7u, state.Num); // the recording backend "processed" 7 buffers
        Assert.Empty(_h.Backend.Running);
        Assert.True(kick.IsClosed);

        // The next start resumes there unless SET_VRING_BASE says otherwise, and needs a new kick.
        _h.Enable(1);
        Assert.Empty(_h.Backend.Running);
        _h.Kick(1);
        Assert.Equal(7, _h.Backend.Running[1].NextAvail);
    }

    [Fact]
    public void Get_vring_base_of_a_stopped_ring_reports_its_base_and_drops_a_held_kick()
    {
        _h.Send(R.SetVringBase, Frontend.State(2, 42));
        var kick = _h.Kick(2);
        var state = MemoryMarshal.Read<VhostUserVringState>(Frontend.ParseReply(_h.Send(R.GetVringBase, Frontend.State(2, 0))).Payload);
        Assert.Equal(42u, state.Num);
        Assert.True(kick.IsClosed);
        Assert.DoesNotContain(_h.Backend.Calls, c => c.StartsWith("RingStopped"));
    }

    [Fact]
    public void Kick_replaced_while_running_restarts_the_ring_where_it_was()
    {
        _h.StartRing(0);
        var oldKick = _h.Backend.Running[0].KickFd!;
        var newKick = _h.Kick(0);
        Assert.True(oldKick.IsClosed);
        Assert.Equal(["RingStopped 0", "RingStarted 0"], _h.Backend.Calls[^2..]);
        Assert.Same(newKick, _h.Backend.Running[0].KickFd);
        Assert.Equal(7, _h.Backend.Running[0].NextAvail);
    }

    [Fact]
    public void Kick_fd_count_must_match_the_no_fd_flag()
    {
        _h.Refused(VhostUserError.BadFdCount, R.SetVringKick, Frontend.U64(0));
        _h.Refused(VhostUserError.BadFdCount, R.SetVringKick, Frontend.U64(0x100), fds: _h.Fds.Open());
        _h.Refused(VhostUserError.BadFdCount, R.SetVringCall, Frontend.U64(1), fds: _h.Fds.Open(2));
        Assert.Equal(0, _h.Fds.StillOpen);
    }

    [Theory]
    [InlineData(R.SetVringKick)]
    [InlineData(R.SetVringCall)]
    [InlineData(R.SetVringErr)]
    public void Vring_fd_requests_check_reserved_bits_and_the_index(R request)
    {
        _h.Refused(VhostUserError.BadPayload, request, Frontend.U64(0x200), fds: _h.Fds.Open());
        _h.Refused(VhostUserError.BadPayloadSize, request, Frontend.State(0, 0)[..4], fds: _h.Fds.Open());
        var fd = _h.Fds.Open();
        _h.Refused(VhostUserError.BadRingIndex, request, Frontend.U64(3), fds: fd);
        Assert.True(fd.IsClosed);
        Assert.Equal(0, _h.Fds.StillOpen);
    }

    [Fact]
    public void Call_fds_go_to_the_backend_and_can_change_any_time()
    {
        var first = _h.Fds.Open();
        _h.Send(R.SetVringCall, Frontend.U64(1), fds: first);
        Assert.Same(first, _h.Backend.CallFds[1]);
        _h.StartRing(1);
        var second = _h.Fds.Open();
        _h.Send(R.SetVringCall, Frontend.U64(1), fds: second);
        Assert.Same(second, _h.Backend.CallFds[1]);
        Assert.True(first.IsClosed);
        _h.Send(R.SetVringCall, Frontend.U64(0x101));
        Assert.Null(_h.Backend.CallFds[1]);
        Assert.Equal("CallFdChanged 1 none", _h.Backend.Calls[^1]);
    }

    [Fact]
    public void Err_fds_are_held_and_closed_when_replaced()
    {
        var first = _h.Fds.Open();
        _h.Send(R.SetVringErr, Frontend.U64(0), fds: first);
        Assert.False(first.IsClosed);
        _h.Send(R.SetVringErr, Frontend.U64(0x100));
        Assert.True(first.IsClosed);
    }

    [Fact]
    public void Disabling_and_enabling_a_running_ring_tells_the_backend()
    {
        _h.StartRing(0);
        _h.Enable(0, false);
        _h.Enable(0, false); // no change, no call
        _h.Enable(0, true);
        Assert.Equal(["RingEnabledChanged 0 False", "RingEnabledChanged 0 True"], _h.Backend.Calls.Where(c => c.StartsWith("RingEnabled")));
        Assert.Single(_h.Backend.Starts);
    }

    [Fact]
    public void Enable_value_must_be_0_or_1()
    {
        _h.Refused(VhostUserError.BadRingConfig, R.SetVringEnable, Frontend.State(0, 2));
    }

    [Fact]
    public void Ring_requests_check_payload_size_first()
    {
        _h.Refused(VhostUserError.BadPayloadSize, R.SetVringNum, [.. Frontend.State(0, 128), 0]);
        _h.Refused(VhostUserError.BadPayloadSize, R.GetVringBase, []);
        _h.Refused(VhostUserError.BadPayloadSize, R.SetVringEnable, new byte[4]);
    }
}
