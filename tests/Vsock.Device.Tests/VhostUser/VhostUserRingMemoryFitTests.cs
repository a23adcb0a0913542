using Vsock.Device.Backend;
using Vsock.Device.VhostUser;
using R = Vsock.Device.VhostUser.VhostUserRequest;

namespace Vsock.Device.Tests.VhostUser;

/// <summary>
/// Found by scripts/fuzz.sh vhost-user: the session checked only where each ring area starts, so a ring whose
/// descriptor table ran past the end of guest memory, or a new memory table that no longer held a running ring,
/// reached <see cref="VsockBackend"/>, whose SplitQueue then threw GuestMemoryException out of the session (the
/// device actor died instead of disconnecting the VMM). Now the session refuses both with a protocol error.
/// </summary>
public sealed class VhostUserRingMemoryFitTests : IDisposable
{
    private const ulong U = SessionHarness.UserBase;
    private readonly SessionHarness _h = new();

    public VhostUserRingMemoryFitTests()
    {
        _h.NegotiateProtocol(VhostUserSession.SupportedProtocolFeatures);
        _h.AckFeatures();
    }

    public void Dispose() => _h.Dispose();

    [Fact]
    public void Ring_whose_descriptor_table_runs_past_the_end_of_memory_is_refused_at_start()
    {
        _h.SetMemory();
        var desc = SessionHarness.RamSize - 0x100; // 16-aligned and inside, but 128 descriptors take 0x800 bytes
        _h.Send(R.SetVringNum, Frontend.State(0, 128));
        _h.Send(R.SetVringAddr, Frontend.Addr(0, U + desc, U + 0x3000, U + 0x2000));
        _h.Kick(0);

        var e = _h.Refused(VhostUserError.BadRingAddress, R.SetVringEnable, Frontend.State(0, 1));

        Assert.Contains("descriptor table", e.Message);
        Assert.Empty(_h.Backend.Running);
    }

    [Fact]
    public void Ring_that_fits_after_a_smaller_size_starts()
    {
        _h.SetMemory();
        var desc = SessionHarness.RamSize - 0x100;
        _h.Send(R.SetVringAddr, Frontend.Addr(0, U + desc, U + 0x3000, U + 0x2000));
        _h.Send(R.SetVringNum, Frontend.State(0, 16)); // 16 descriptors: exactly the last 0x100 bytes
        _h.Kick(0);
        _h.Enable(0);

        Assert.True(_h.Backend.Running.ContainsKey(0));
    }

    [Fact]
    public void Memory_table_without_a_running_rings_memory_is_refused_and_changes_nothing()
    {
        _h.StartRing(0);
        var before = _h.Session.Memory;

        // The ring lives at 0x10000..0x12086; the new table starts above it.
        var e = _h.Refused(VhostUserError.BadMemoryRegion, R.SetMemTable,
            Frontend.MemTable(Frontend.Region(0x100000, 0x10000, U + 0x100000)), fds: _h.Fds.Open());

        Assert.Contains("ring 0 is running", e.Message);
        Assert.Same(before, _h.Session.Memory);
        Assert.Same(before, _h.Backend.Memory);
        Assert.Equal(1, _h.Mapper.Live); // the refused table's mapping was released
        Assert.Equal(1, _h.Fds.StillOpen); // only the ring's kick fd, which the backend holds
    }

    [Fact]
    public void Removing_the_region_a_running_ring_lives_in_is_refused()
    {
        _h.StartRing(0);

        _h.Refused(VhostUserError.BadMemoryRegion, R.RemMemReg, Frontend.SingleRegion(Frontend.Region(0, SessionHarness.RamSize, U)));

        Assert.Single(_h.Session.Memory.Regions);
    }

    [Fact]
    public void With_reply_ack_the_refused_table_is_acknowledged_as_failed()
    {
        _h.StartRing(0);

        var reply = _h.Send(R.SetMemTable, Frontend.MemTable(Frontend.Region(0x100000, 0x10000, U + 0x100000)), needReply: true, _h.Fds.Open());

        Assert.Equal(1UL, Frontend.ReplyU64(reply));
        Assert.True(_h.Backend.Running.ContainsKey(0));
    }

    /// <summary>The fuzzer's case, end to end with the production backend: no exception but the protocol error.</summary>
    [Fact]
    public void Vsock_backend_is_never_handed_a_ring_outside_memory()
    {
        using var backend = new VsockBackend(3, 1024, new NoEvents());
        var mapper = new NativeMemoryMapper();
        using var session = new VhostUserSession(backend, mapper);
        var reply = new byte[VhostUserCodec.MaxMessageSize];
        var fds = new TestFds();
        void Send(R request, byte[] payload, int fdCount = 0)
        {
            using var m = Frontend.Message(request, payload, fds: fds.Open(fdCount));
            session.Handle(m, reply);
        }

        Send(R.SetProtocolFeatures, Frontend.U64(VhostUserSession.SupportedProtocolFeatures));
        Send(R.SetFeatures, Frontend.U64(backend.Features));
        Send(R.SetMemTable, Frontend.MemTable(Frontend.Region(0, 0x20000, U)), 1);
        Send(R.SetVringNum, Frontend.State(1, 128));
        Send(R.SetVringAddr, Frontend.Addr(1, U + 0x1000, U + 0x3000, U + 0x2000));
        Send(R.SetVringKick, Frontend.U64(1), 1);
        Send(R.SetVringEnable, Frontend.State(1, 1));
        Assert.Single(backend.Memory.Regions);

        var e = Assert.Throws<VhostUserProtocolException>(() =>
            Send(R.SetMemTable, Frontend.MemTable(Frontend.Region(0x1000, 0x1000, U + 0x1000)), 1));
        Assert.Equal(VhostUserError.BadMemoryRegion, e.Error);
    }

    private sealed class NoEvents : IVsockDeviceEvents
    {
        public void RingReady(int index, Microsoft.Win32.SafeHandles.SafeFileHandle? kickFd) { }
        public void RingStopped(int index) { }
        public void DeviceReset() { }
    }
}
