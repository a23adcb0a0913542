using Vsock.Device.VhostUser;
using P = Vsock.Device.VhostUser.VhostUserProtocolFeatures;
using R = Vsock.Device.VhostUser.VhostUserRequest;

namespace Vsock.Device.Tests.VhostUser;

/// <summary>SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG, GET_MAX_MEM_SLOTS.</summary>
public sealed class VhostUserSessionMemoryTests : IDisposable
{
    private const ulong U = SessionHarness.UserBase;
    private readonly SessionHarness _h = new();

    public VhostUserSessionMemoryTests() => _h.NegotiateProtocol(VhostUserSession.SupportedProtocolFeatures);

    public void Dispose() => _h.Dispose();

    [Fact]
    public void Set_mem_table_maps_every_region_and_closes_the_fds()
    {
        // QEMU's q35 layout: low RAM below the VGA hole and the rest, both from one memfd.
        var fds = _h.Fds.Open(2);
        Assert.Empty(_h.Send(R.SetMemTable, Frontend.MemTable(
            Frontend.Region(0, 0xa0000, U, 0),
            Frontend.Region(0xc0000, 0x140000, U + 0xc0000, 0xc0000)), fds: fds));

        Assert.Equal([(0UL, 0UL, 0xa0000UL, U), (0xc0000UL, 0xc0000UL, 0x140000UL, U + 0xc0000)], _h.Mapper.Maps);
        Assert.All(fds, fd => Assert.True(fd.IsClosed));
        Assert.Equal(2, _h.Session.Memory.Regions.Count);
        Assert.Same(_h.Session.Memory, _h.Backend.Memory);
        Assert.Equal("MemoryChanged 2", _h.Backend.Calls[^1]);
        Assert.Equal(0xc1234UL, _h.Session.Memory.UserToGuest(U + 0xc1234));
    }

    [Fact]
    public void Re_sent_table_replaces_and_releases_the_old_one()
    {
        _h.SetMemory();
        var first = _h.Session.Memory;
        _h.SetMemory();
        Assert.NotSame(first, _h.Session.Memory);
        Assert.Same(_h.Session.Memory, _h.Backend.Memory);
        Assert.Equal(1, _h.Mapper.Live);
        Assert.Equal(2, _h.Mapper.MapCount);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(9u)]
    [InlineData(uint.MaxValue)]
    public void Region_count_outside_1_to_8_is_malformed(uint count)
    {
        var payload = new byte[8 + 32];
        BitConverter.TryWriteBytes(payload, count);
        _h.Refused(VhostUserError.BadPayload, R.SetMemTable, payload, fds: _h.Fds.Open());
        Assert.Equal(0, _h.Fds.StillOpen);
    }

    [Fact]
    public void Payload_must_hold_exactly_the_announced_regions()
    {
        var table = Frontend.MemTable(Frontend.Region(0, 0x1000, U), Frontend.Region(0x1000, 0x1000, U + 0x1000));
        _h.Refused(VhostUserError.BadPayloadSize, R.SetMemTable, table[..^1], fds: _h.Fds.Open(2));
        _h.Refused(VhostUserError.BadPayloadSize, R.SetMemTable, [.. table, 0], fds: _h.Fds.Open(2));
        _h.Refused(VhostUserError.BadPayloadSize, R.SetMemTable, new byte[4]);
        Assert.Equal(0, _h.Mapper.MapCount);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public void One_fd_per_region(int fdCount)
    {
        var table = Frontend.MemTable(Frontend.Region(0, 0x1000, U), Frontend.Region(0x1000, 0x1000, U + 0x1000));
        _h.Refused(VhostUserError.BadFdCount, R.SetMemTable, table, fds: _h.Fds.Open(fdCount));
        Assert.Equal(0, _h.Fds.StillOpen);
        Assert.Equal(0, _h.Mapper.MapCount);
    }

    [Fact]
    public void Overlapping_regions_are_refused_and_the_old_table_stays()
    {
        _h.SetMemory();
        var before = _h.Session.Memory;
        var e = _h.Refused(VhostUserError.BadMemoryRegion, R.SetMemTable,
            Frontend.MemTable(Frontend.Region(0, 0x2000, U), Frontend.Region(0x1000, 0x2000, U + 0x10000)), fds: _h.Fds.Open(2));
        Assert.True(e.IsRejection);
        Assert.Same(before, _h.Session.Memory);
        Assert.Equal(1, _h.Mapper.Live); // the two new mappings were released
        Assert.Equal(0, _h.Fds.StillOpen);
    }

    [Theory]
    [InlineData(0x1000UL, 0UL, 0UL, 0UL)] // empty
    [InlineData(0xffff_ffff_ffff_f000UL, 0x2000UL, 0UL, 0UL)] // gpa wraps
    [InlineData(0UL, 0x2000UL, 0xffff_ffff_ffff_f000UL, 0UL)] // uaddr wraps
    [InlineData(0UL, 0x2000UL, 0UL, 0xffff_ffff_ffff_f000UL)] // offset wraps
    public void Regions_that_are_empty_or_wrap_are_refused_before_mapping(ulong gpa, ulong size, ulong uaddr, ulong offset)
    {
        var table = Frontend.MemTable(Frontend.Region(0x100000, 0x1000, U), Frontend.Region(gpa, size, uaddr, offset));
        _h.Refused(VhostUserError.BadMemoryRegion, R.SetMemTable, table, fds: _h.Fds.Open(2));
        Assert.Equal(0, _h.Mapper.Live);
        Assert.Equal(0, _h.Fds.StillOpen);
    }

    [Fact]
    public void Mapping_failure_is_refused_and_releases_what_was_mapped()
    {
        var table = Frontend.MemTable(Frontend.Region(0, 0x1000, U), Frontend.Region(0x1000, 1UL << 40, U + 0x1000));
        var e = _h.Refused(VhostUserError.MemoryMapFailed, R.SetMemTable, table, fds: _h.Fds.Open(2));
        Assert.Contains("cannot map", e.Message);
        Assert.Equal(0, _h.Mapper.Live);
        Assert.Empty(_h.Session.Memory.Regions);
        Assert.Equal(0, _h.Fds.StillOpen);
    }

    [Fact]
    public void Mapper_io_errors_become_refusals()
    {
        _h.Mapper.Failure = new IOException("mmap: ENODEV");
        _h.Refused(VhostUserError.MemoryMapFailed, R.SetMemTable, Frontend.MemTable(Frontend.Region(0, 0x1000, U)), fds: _h.Fds.Open());
    }

    [Fact]
    public void Add_and_remove_regions()
    {
        _h.SetMemory();
        var first = _h.Session.Memory.Regions[0];
        var addFd = _h.Fds.Open();
        Assert.Empty(_h.Send(R.AddMemReg, Frontend.SingleRegion(Frontend.Region(0x100000000, 0x1000, 0x7e00_0000_0000, 0x20000)), fds: addFd));
        Assert.True(addFd.IsClosed);
        Assert.Equal(2, _h.Session.Memory.Regions.Count);
        Assert.Same(first, _h.Session.Memory.Regions[0]); // shared, not re-mapped
        Assert.Equal("MemoryChanged 2", _h.Backend.Calls[^1]);
        Assert.Equal(2, _h.Mapper.Live);
        Assert.Equal(0x20000UL, _h.Mapper.Maps[^1].MmapOffset);

        // QEMU attaches the region's fd to REM_MEM_REG too (mmap_offset 0).
        var remFd = _h.Fds.Open();
        Assert.Empty(_h.Send(R.RemMemReg, Frontend.SingleRegion(Frontend.Region(0, SessionHarness.RamSize, U)), fds: remFd));
        Assert.True(remFd.IsClosed);
        Assert.Equal(0x100000000UL, Assert.Single(_h.Session.Memory.Regions).GuestPhysicalAddress);
        Assert.Equal(1, _h.Mapper.Live);
        Assert.Equal("MemoryChanged 1", _h.Backend.Calls[^1]);

        Assert.Empty(_h.Send(R.RemMemReg, Frontend.SingleRegion(Frontend.Region(0x100000000, 0x1000, 0x7e00_0000_0000))));
        Assert.Empty(_h.Session.Memory.Regions);
        Assert.Equal(0, _h.Mapper.Live);
    }

    [Fact]
    public void Removing_an_unknown_region_is_refused()
    {
        _h.SetMemory();
        _h.Refused(VhostUserError.BadMemoryRegion, R.RemMemReg, Frontend.SingleRegion(Frontend.Region(0, 0x1000, U)));
        _h.Refused(VhostUserError.BadFdCount, R.RemMemReg, Frontend.SingleRegion(Frontend.Region(0, SessionHarness.RamSize, U)), fds: _h.Fds.Open(2));
        Assert.Single(_h.Session.Memory.Regions);
    }

    [Fact]
    public void Adding_an_overlapping_region_is_refused_and_released()
    {
        _h.SetMemory();
        _h.Refused(VhostUserError.BadMemoryRegion, R.AddMemReg, Frontend.SingleRegion(Frontend.Region(0x1000, 0x1000, 0x1000)), fds: _h.Fds.Open());
        Assert.Equal(1, _h.Mapper.Live);
        Assert.Single(_h.Session.Memory.Regions);
    }

    [Fact]
    public void Add_needs_exactly_one_fd_and_a_40_byte_payload()
    {
        var payload = Frontend.SingleRegion(Frontend.Region(0, 0x1000, U));
        _h.Refused(VhostUserError.BadFdCount, R.AddMemReg, payload);
        _h.Refused(VhostUserError.BadFdCount, R.AddMemReg, payload, fds: _h.Fds.Open(2));
        _h.Refused(VhostUserError.BadPayloadSize, R.AddMemReg, payload[..32], fds: _h.Fds.Open());
        Assert.Equal(0, _h.Fds.StillOpen);
    }

    [Fact]
    public void Slot_requests_need_configure_mem_slots()
    {
        Assert.Equal(509UL, Frontend.ReplyU64(_h.Send(R.GetMaxMemSlots)));
        _h.NegotiateProtocol(P.Bit(P.Mq));
        _h.Refused(VhostUserError.UnsupportedRequest, R.GetMaxMemSlots);
        _h.Refused(VhostUserError.UnsupportedRequest, R.AddMemReg, Frontend.SingleRegion(Frontend.Region(0, 0x1000, U)), fds: _h.Fds.Open());
        _h.Refused(VhostUserError.UnsupportedRequest, R.RemMemReg, Frontend.SingleRegion(Frontend.Region(0, 0x1000, U)));
        Assert.Equal(0, _h.Fds.StillOpen);
    }

    [Fact]
    public void Memory_stays_usable_by_a_running_ring_when_a_region_is_added()
    {
        _h.StartRing(0);
        _h.Send(R.AddMemReg, Frontend.SingleRegion(Frontend.Region(0x100000000, 0x1000, 0x7e00_0000_0000)), fds: _h.Fds.Open());
        var (desc, _, _) = SessionHarness.RingGpas(0);
        _h.Backend.Memory!.WriteUInt32(desc, 0xdeadbeef);
        Assert.Equal(0xdeadbeefu, _h.Session.Memory.ReadUInt32(desc));
        Assert.True(_h.Backend.Running.ContainsKey(0));
    }
}
