using Vsock.Device.Interop;
using Vsock.Device.Memory;

namespace Vsock.Device.Tests.Interop;

public sealed unsafe class MmapMemoryMapperTests
{
    private static readonly ulong Page = (ulong)Environment.SystemPageSize;

    [Fact]
    public void Two_mappings_of_one_memfd_share_their_bytes()
    {
        using var fd = MemFd.Create("shared", (long)(4 * Page));
        using var a = MmapMemoryMapper.Instance.Map(fd, 0, 0x1000_0000, 4 * Page, 0x7f00_0000_0000);
        using var b = MmapMemoryMapper.Instance.Map(fd, Page, 0x2000_0000, 3 * Page, 0x7f10_0000_0000);
        Assert.NotEqual(a.HostAddress, b.HostAddress);

        var pa = (byte*)a.HostAddress;
        var pb = (byte*)b.HostAddress;
        pa[Page + 5] = 0xAB; // second page of a == first page of b
        Assert.Equal(0xAB, pb[5]);
        pb[2 * Page] = 0xCD;
        Assert.Equal(0xCD, pa[3 * Page]);
        Assert.Equal(0, pa[0]); // memfd starts zeroed
    }

    [Fact]
    public void The_region_describes_what_was_asked_and_feeds_GuestMemory()
    {
        using var fd = MemFd.Create("guest-ram", (long)(2 * Page));
        var region = MmapMemoryMapper.Instance.Map(fd, 0, 0x4000, 2 * Page, 0x7f00_0000_0000);
        using var memory = new GuestMemory([region]);
        Assert.Equal(0x4000ul, region.GuestPhysicalAddress);
        Assert.Equal(2 * Page, region.Size);
        Assert.Equal(0x7f00_0000_0000ul, region.UserAddress);
        var owner = Assert.IsType<MappedMemory>(region.Owner);
        Assert.Equal(region.HostAddress, owner.Address);
        Assert.Equal((nuint)(2 * Page), owner.Length);

        memory.WriteUInt32(0x4010, 0x1234_5678);
        Assert.Equal(0x1234_5678u, memory.ReadUInt32(0x4010));
        Assert.Equal(0x78, ((byte*)region.HostAddress)[0x10]);
    }

    [Fact]
    public void An_unaligned_offset_maps_from_the_page_below_and_skips_the_remainder()
    {
        using var fd = MemFd.Create("unaligned", (long)(3 * Page));
        using var whole = MmapMemoryMapper.Instance.Map(fd, 0, 0, 3 * Page, 0);
        ((byte*)whole.HostAddress)[Page + 0x123] = 0x5A;

        using var part = MmapMemoryMapper.Instance.Map(fd, Page + 0x123, 0x10_0000, Page, 0x10_0000);
        Assert.Equal(0x5A, ((byte*)part.HostAddress)[0]);
        var owner = Assert.IsType<MappedMemory>(part.Owner);
        Assert.Equal(owner.Address + 0x123, part.HostAddress);
        Assert.Equal((nuint)(Page + 0x123), owner.Length);
        Assert.Equal(0ul, (ulong)owner.Address % Page);
    }

    [Fact]
    public void Disposing_a_region_twice_unmaps_once_and_does_not_throw()
    {
        using var fd = MemFd.Create("twice", (long)Page);
        var region = MmapMemoryMapper.Instance.Map(fd, 0, 0, Page, 0);
        var owner = Assert.IsType<MappedMemory>(region.Owner);
        region.Dispose();
        Assert.True(owner.IsClosed);
        region.Dispose();
        owner.Dispose();
    }

    [Fact]
    public void The_mapping_outlives_the_fd()
    {
        var fd = MemFd.Create("outlive", (long)Page);
        using var region = MmapMemoryMapper.Instance.Map(fd, 0, 0, Page, 0);
        fd.Dispose();
        ((byte*)region.HostAddress)[Page - 1] = 7;
        Assert.Equal(7, ((byte*)region.HostAddress)[Page - 1]);
    }

    [Theory]
    [InlineData(0ul, 0ul, 0ul, 0ul)]                              // empty
    [InlineData(ulong.MaxValue - 10, 0x1000ul, 0ul, 0ul)]          // offset + size overflows
    [InlineData((ulong)long.MaxValue, 0x1000ul, 0ul, 0ul)]         // past the largest file offset
    [InlineData(0ul, 0x1000ul, ulong.MaxValue - 0x10, 0ul)]        // guest range wraps
    [InlineData(0ul, 0x1000ul, 0ul, ulong.MaxValue - 0x10)]        // user range wraps
    [InlineData(0ul, 0x10_0000ul, 0ul, 0ul)]                       // larger than the file
    [InlineData(0x1000ul, 0x1000ul, 0ul, 0ul)]                     // ends past the file (file is 0x1000 bytes)
    public void Bad_numbers_from_the_VMM_are_a_GuestMemoryException(ulong offset, ulong size, ulong gpa, ulong uaddr)
    {
        using var fd = MemFd.Create("bad", 0x1000);
        Assert.Throws<GuestMemoryException>(() => MmapMemoryMapper.Instance.Map(fd, offset, gpa, size, uaddr));
    }

    [Fact]
    public void An_fd_that_cannot_be_mapped_is_a_LinuxException()
    {
        // A socket has no pages to map: mmap fails with ENODEV.
        var (a, b) = UnixSocket.Pair();
        using (a)
        using (b)
        {
            var e = Assert.Throws<LinuxException>(() => MmapMemoryMapper.Instance.Map(a.Handle, 0, 0, Page, 0));
            Assert.StartsWith("mmap", e.Operation);
        }
    }

    [Fact]
    public void MemFd_rejects_a_negative_size()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => MemFd.Create("negative", -1));
    }

    [Fact]
    public void MemFd_has_the_requested_size()
    {
        using var fd = MemFd.Create("sized", 12345);
        Assert.Equal(12345, RandomAccess.GetLength(fd));
    }
}
