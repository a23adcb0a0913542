using System.Diagnostics;
using Vsock.Device.Interop;
using Vsock.Device.Memory;
using Xunit.Abstractions;

namespace Vsock.Device.Tests.Interop;

/// <summary>
/// What keeps a VMM from crashing the daemon by shrinking guest RAM under our mapping: seals where the
/// file takes them, the SIGBUS guard on every mapping (<see cref="MmapMemoryMapper"/>, <see cref="SigbusGuard"/>).
/// </summary>
public sealed unsafe class GuestMemoryProtectionTests(ITestOutputHelper output)
{
    private static readonly ulong Page = (ulong)Environment.SystemPageSize;

    [Fact]
    public void The_guard_is_installed_in_this_process()
    {
        Assert.True(SigbusGuard.IsAvailable, SigbusGuard.UnavailableReason);
    }

    [Fact]
    public void A_memfd_created_without_sealing_support_is_guarded_and_left_unsealed()
    {
        using var fd = MemFd.Create("no-sealing", (long)(4 * Page));
        Assert.Equal(FileSeals.Seal, MemFd.GetSeals(fd));
        using var region = MmapMemoryMapper.Instance.Map(fd, 0, 0, 4 * Page, 0);
        Assert.Equal(RegionProtection.SigbusGuard, region.Protection);
        Assert.Equal(FileSeals.Seal, MemFd.GetSeals(fd));
        MemFd.Truncate(fd, (long)(8 * Page)); // nothing stops the VMM
    }

    [Fact]
    public void A_memfd_that_allows_sealing_gets_F_SEAL_SHRINK_and_nothing_else()
    {
        using var fd = MemFd.Create("sealable", (long)(4 * Page), allowSealing: true);
        Assert.Equal(FileSeals.None, MemFd.GetSeals(fd));
        using var region = MmapMemoryMapper.Instance.Map(fd, 0, 0, 4 * Page, 0);
        Assert.Equal(RegionProtection.SealedByDevice | RegionProtection.SigbusGuard, region.Protection);
        Assert.Equal(FileSeals.Shrink, MemFd.GetSeals(fd));

        var e = Assert.Throws<LinuxException>(() => MemFd.Truncate(fd, (long)Page));
        Assert.Equal(Errno.EPERM, e.Errno);
        MemFd.Truncate(fd, (long)(8 * Page)); // growing, and further seals, stay the VMM's business
        MemFd.AddSeals(fd, FileSeals.Grow);
        Assert.Equal(FileSeals.Shrink | FileSeals.Grow, MemFd.GetSeals(fd));
    }

    [Fact]
    public void A_memfd_sealed_the_way_QEMU_seals_it_is_left_as_it_is()
    {
        using var fd = MemFd.Create("qemu-ram", (long)(4 * Page), allowSealing: true);
        MemFd.AddSeals(fd, FileSeals.Grow | FileSeals.Shrink | FileSeals.Seal);
        using var region = MmapMemoryMapper.Instance.Map(fd, 0, 0, 4 * Page, 0);
        Assert.Equal(RegionProtection.SealedByVmm | RegionProtection.SigbusGuard, region.Protection);
        Assert.Equal(FileSeals.Grow | FileSeals.Shrink | FileSeals.Seal, MemFd.GetSeals(fd));
    }

    [Fact]
    public void A_memfd_closed_to_seals_without_F_SEAL_SHRINK_is_guarded()
    {
        using var fd = MemFd.Create("sealed-open", (long)(4 * Page), allowSealing: true);
        MemFd.AddSeals(fd, FileSeals.Seal);
        using var region = MmapMemoryMapper.Instance.Map(fd, 0, 0, 4 * Page, 0);
        Assert.Equal(RegionProtection.SigbusGuard, region.Protection);
        Assert.Equal(FileSeals.Seal, MemFd.GetSeals(fd));
    }

    [Fact]
    public void A_dev_shm_file_cannot_be_sealed_and_is_guarded()
    {
        var path = $"/dev/shm/vsock-test-{Guid.NewGuid():N}";
        using var fd = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite);
        File.Delete(path);
        MemFd.Truncate(fd, (long)(4 * Page));
        Assert.Equal(FileSeals.Seal, MemFd.GetSeals(fd));
        using var region = MmapMemoryMapper.Instance.Map(fd, 0, 0, 4 * Page, 0);
        Assert.Equal(RegionProtection.SigbusGuard, region.Protection);
    }

    [Fact]
    public void A_file_that_knows_no_seals_and_a_read_only_fd_are_not_sealed()
    {
        // A file on the build disk (ext4 or similar; /tmp may be tmpfs, which does know seals).
        var path = Path.Combine(AppContext.BaseDirectory, $"plain-{Guid.NewGuid():N}");
        File.WriteAllBytes(path, new byte[Page]);
        try
        {
            using var file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
            Assert.Null(MemFd.GetSeals(file)); // not a shmem file: EINVAL
            Assert.Equal(RegionProtection.None, MmapMemoryMapper.SealAgainstShrinking(file));
        }
        finally
        {
            File.Delete(path);
        }

        using var fd = MemFd.Create("read-only", (long)Page, allowSealing: true);
        using var readOnly = File.OpenHandle($"/proc/self/fd/{fd.DangerousGetHandle()}", FileMode.Open, FileAccess.Read);
        Assert.Equal(RegionProtection.None, MmapMemoryMapper.SealAgainstShrinking(readOnly)); // F_ADD_SEALS: EPERM
        Assert.Equal(FileSeals.None, MemFd.GetSeals(fd));
    }

    [Fact]
    public void A_guarded_region_truncated_under_us_reads_zeros_and_is_poisoned_instead_of_killing_the_process()
    {
        using var fd = MemFd.Create("pulled-away", (long)(16 * Page));
        var region = MmapMemoryMapper.Instance.Map(fd, 0, 0x10_0000, 16 * Page, 0x7f00_0000_0000);
        using var memory = new GuestMemory([region]);
        memory.WriteUInt32(0x10_0000 + 8 * Page, 0xfeed_f00d);
        Assert.False(region.IsPoisoned);
        Assert.Null(memory.PoisonedRegion);
        var repairedBefore = SigbusGuard.RepairedTotal;

        MemFd.Truncate(fd, (long)Page); // what a hostile VMM does after SET_MEM_TABLE

        Assert.Equal(0u, memory.ReadUInt32(0x10_0000 + 8 * Page)); // would have been SIGBUS
        Assert.True(region.IsPoisoned);
        Assert.Same(region, memory.PoisonedRegion);
        Assert.True(SigbusGuard.RepairedTotal > repairedBefore);
        // The whole range is private zero pages now: writes land nowhere the VMM sees, and do not fault.
        memory.Write(0x10_0000 + 15 * Page, new byte[(int)Page]);
        memory.Read(0x10_0000, new byte[(int)(16 * Page)]);
    }

    [Fact]
    public void A_released_region_gives_its_guard_slot_back()
    {
        // More mappings than the guard's table holds (4096), one at a time: each release frees its slot.
        using var fd = MemFd.Create("slots", (long)Page);
        for (var i = 0; i < 5000; i++)
        {
            var region = MmapMemoryMapper.Instance.Map(fd, 0, 0, Page, 0);
            Assert.True((region.Protection & RegionProtection.SigbusGuard) != 0, $"mapping {i} was not guarded");
            region.Dispose();
            Assert.False(region.IsPoisoned);
        }
    }

    [Fact]
    public void A_region_past_the_end_of_its_file_is_refused_before_it_is_mapped()
    {
        using var fd = MemFd.Create("short", (long)(2 * Page), allowSealing: true);
        var e = Assert.Throws<GuestMemoryException>(() => MmapMemoryMapper.Instance.Map(fd, Page, 0, 2 * Page, 0));
        Assert.Contains("extends past the end of its file", e.Message);
    }

    /// <summary>
    /// The figures in docs/RELIABILITY.md: what the device pays per ring turn (the poisoned check), per
    /// mapping (seal check and guard registration) and once per truncated region (the repair).
    /// </summary>
    [Fact]
    public void What_the_protection_costs()
    {
        const ulong Size = 64UL << 20; // the synthetic guest's RAM
        using var fd = MemFd.Create("cost", (long)Size);
        var region = MmapMemoryMapper.Instance.Map(fd, 0, 0, Size, 0);
        using var memory = new GuestMemory([region]);

        const int Checks = 10_000_000;
        var clock = Stopwatch.StartNew();
        var found = 0;
        for (var i = 0; i < Checks; i++)
            found += memory.PoisonedRegion is null ? 0 : 1;
        var perCheck = clock.Elapsed.TotalNanoseconds / Checks;
        Assert.Equal(0, found);

        const int Maps = 2000;
        clock.Restart();
        for (var i = 0; i < Maps; i++)
            MmapMemoryMapper.Instance.Map(fd, 0, 0, Size, 0).Dispose();
        var protectedMap = clock.Elapsed.TotalMicroseconds / Maps;
        clock.Restart();
        for (var i = 0; i < Maps; i++)
            MappedMemory.MapShared(fd, 0, (nuint)Size).Dispose();
        var plainMap = clock.Elapsed.TotalMicroseconds / Maps;

        memory.Write(0, new byte[(int)(16 << 20)]); // pages the device had touched
        memory.ReadUInt32(32 << 20); // and the accessor is compiled
        MemFd.Truncate(fd, (long)Page);
        clock.Restart();
        memory.ReadUInt32(32 << 20);
        var repair = clock.Elapsed.TotalMicroseconds;
        Assert.True(region.IsPoisoned);

        output.WriteLine($"poisoned check (1 region): {perCheck:F2} ns per ring turn");
        output.WriteLine($"map + unmap of 64 MiB: {protectedMap:F1} us with seal check and guard, {plainMap:F1} us plain mmap");
        output.WriteLine($"first access after truncation (SIGBUS, zero pages over 64 MiB, 16 MiB touched): {repair:F0} us");
        Assert.True(perCheck < 100, $"the poisoned check takes {perCheck:F1} ns");
    }
}
