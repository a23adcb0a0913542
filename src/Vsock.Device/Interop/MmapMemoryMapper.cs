using Microsoft.Win32.SafeHandles;
using Vsock.Device.Memory;

namespace Vsock.Device.Interop;

/// <summary>
/// The production <see cref="IMemoryMapper"/>: maps a region of the VMM's guest RAM shared and
/// read/write, as every vhost-user backend must (the guest sees our writes to its rings and buffers).
/// The numbers come from the VMM (SET_MEM_TABLE / ADD_MEM_REG) and are checked before any syscall:
/// bad ones raise <see cref="GuestMemoryException"/>, a failing mmap raises <see cref="LinuxException"/>.
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

        // A region larger than the file would map fine and then SIGBUS on the first touch past the
        // end, killing the daemon; refuse it up front for files whose size means something.
        var status = FileStatus.OfHandle(fd);
        if (status is { IsRegularFile: true } s && s.Size < mmapOffset + size)
            throw new GuestMemoryException(
                $"memory region 0x{mmapOffset:x}+0x{size:x} extends past the end of its file (0x{s.Size:x} bytes)");

        var owner = new MappedMemory((nuint)length);
        var address = Libc.Mmap(0, (nuint)length, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, (long)alignedOffset);
        if (address == Libc.MAP_FAILED)
        {
            var error = LinuxException.FromLastError($"mmap of 0x{length:x} bytes at file offset 0x{alignedOffset:x}");
            owner.Dispose(); // never attached: releases nothing
            throw error;
        }
        owner.Attach(address);
        return new MemoryRegion(gpa, size, userAddress, address + (nint)remainder, owner);
    }
}
