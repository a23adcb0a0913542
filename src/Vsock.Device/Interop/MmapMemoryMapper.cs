using Microsoft.Win32.SafeHandles;
using Vsock.Device.Memory;

namespace Vsock.Device.Interop;

/// <summary>
/// The production <see cref="IMemoryMapper"/>: maps a region of the VMM's guest RAM shared and
/// read/write, as every vhost-user backend must (the guest sees our writes to its rings and buffers).
/// The numbers come from the VMM (SET_MEM_TABLE / ADD_MEM_REG) and are checked before any syscall:
/// bad ones raise <see cref="GuestMemoryException"/>, a failing mmap raises <see cref="LinuxException"/>.
///
/// The file stays the VMM's, and a VMM that shrinks it under our mapping would make our next access
/// raise SIGBUS and end the process (every VM in it). Two defences, in this order:
/// <list type="number">
/// <item>Seals. A file sealed with F_SEAL_SHRINK cannot shrink (QEMU's memory-backend-memfd seals
/// GROW|SHRINK|SEAL by default). A memfd that still allows sealing gets F_SEAL_SHRINK from us: harmless to a
/// VMM, which never shrinks guest RAM (hole punching, which virtio-mem and balloons use, stays allowed).
/// The seal comes before the size check, so the size we check cannot go down afterwards.</item>
/// <item>The SIGBUS guard (<see cref="SigbusGuard"/>) on every mapping, sealed or not: it is what protects
/// files that cannot be sealed (hugetlbfs and /dev/shm files, memfds created without MFD_ALLOW_SEALING or
/// sealed with F_SEAL_SEAL but not SHRINK, files on disk), and it costs nothing until a fault. A region
/// that can be neither sealed nor guarded is refused.</item>
/// </list>
/// </summary>
public sealed class MmapMemoryMapper : IMemoryMapper
{
    private static readonly ulong PageSize = (ulong)Environment.SystemPageSize;

    private MmapMemoryMapper()
    {
    }

    public static MmapMemoryMapper Instance { get; } = new();

    public MemoryRegion Map(SafeFileHandle fd, ulong mmapOffset, ulong gpa, ulong size, ulong userAddress)
    {
        ArgumentNullException.ThrowIfNull(fd);
        if (size == 0)
            throw new GuestMemoryException("memory region has size 0");
        if (mmapOffset > ulong.MaxValue - size || mmapOffset + size > long.MaxValue)
            throw new GuestMemoryException($"mmap offset 0x{mmapOffset:x} + size 0x{size:x} overflows a file offset");
        if (gpa > ulong.MaxValue - (size - 1))
            throw new GuestMemoryException($"guest range 0x{gpa:x}+0x{size:x} wraps around 2^64");
        if (userAddress > ulong.MaxValue - (size - 1))
            throw new GuestMemoryException($"user address range 0x{userAddress:x}+0x{size:x} wraps around 2^64");

        // Like libvhost-user: an offset that is not page aligned is mapped from the page below it
        // and the remainder skipped, since mmap only takes aligned offsets.
        var remainder = mmapOffset % PageSize;
        var alignedOffset = mmapOffset - remainder;
        var length = size + remainder; // cannot overflow: mmapOffset + size <= long.MaxValue

        var protection = SealAgainstShrinking(fd);

        // A region larger than the file would map fine and then SIGBUS on the first touch past the
        // end; refuse it up front for files whose size means something.
        var status = FileStatus.OfHandle(fd);
        if (status is { IsRegularFile: true } s && s.Size < mmapOffset + size)
            throw new GuestMemoryException(
                $"memory region 0x{mmapOffset:x}+0x{size:x} extends past the end of its file (0x{s.Size:x} bytes)");

        var owner = MappedMemory.MapShared(fd, (long)alignedOffset, (nuint)length);
        if (owner.TryGuard())
        {
            protection |= RegionProtection.SigbusGuard;
        }
        else if (protection == RegionProtection.None)
        {
            owner.Dispose();
            throw new GuestMemoryException(
                "the region's file cannot be sealed against shrinking (a hugetlbfs or /dev/shm file, or a memfd without " +
                $"MFD_ALLOW_SEALING) and the SIGBUS guard cannot take it ({SigbusGuard.UnavailableReason ?? "its range table is full"}): " +
                "a VMM that shrank it would crash the daemon");
        }
        return new MemoryRegion(gpa, size, userAddress, owner.Address + (nint)remainder, owner, protection);
    }

    /// <summary>Seals <paramref name="fd"/> against shrinking where the file allows it; says what holds it.</summary>
    internal static RegionProtection SealAgainstShrinking(SafeFileHandle fd)
    {
        var seals = MemFd.GetSeals(fd);
        if (seals is not { } current)
            return RegionProtection.None; // not a shmem/hugetlbfs file: seals do not exist for it
        if ((current & FileSeals.Shrink) != 0)
            return RegionProtection.SealedByVmm;
        if ((current & FileSeals.Seal) != 0)
            return RegionProtection.None; // born unsealable, or closed to new seals by the VMM
        try
        {
            MemFd.AddSeals(fd, FileSeals.Shrink);
            return RegionProtection.SealedByDevice;
        }
        catch (LinuxException e) when (e.Errno == Errno.EPERM)
        {
            return RegionProtection.None; // an fd not open for writing, or F_SEAL_SEAL added meanwhile
        }
    }
}
