using Microsoft.Win32.SafeHandles;
using Vsock.Device.Interop;
using Vsock.Device.Memory;

namespace Vsock.Testing.Virtio;

/// <summary>
/// The synthetic guest's RAM: one shared memfd, mapped here and handed to the back end with
/// SET_MEM_TABLE as a single region at guest physical address 0. Space is handed out by a bump
/// allocator (rings, buffers, scratch); nothing is ever freed, a guest lives for one test.
/// </summary>
internal sealed unsafe class GuestRam : IDisposable
{
    private readonly MemoryRegion _mapping;
    private ulong _next;

    public GuestRam(long size, ulong userAddress)
    {
        if (size < 1 << 20)
            throw new ArgumentOutOfRangeException(nameof(size), "guest RAM must be at least 1 MiB");
        Fd = MemFd.Create("synthetic-guest-ram", size);
        try
        {
            _mapping = MmapMemoryMapper.Instance.Map(Fd, 0, 0, (ulong)size, userAddress);
        }
        catch
        {
            Fd.Dispose();
            throw;
        }
        Size = (ulong)size;
        UserAddress = userAddress;
        _next = 4096; // GPA 0 stays unused so a zeroed descriptor never points at real data
    }

    /// <summary>The memfd the back end maps (owned here).</summary>
    public SafeFileHandle Fd { get; }

    public ulong Size { get; }

    /// <summary>The pretend VMM virtual address of GPA 0 (SET_MEM_TABLE userspace_addr, SET_VRING_ADDR speaks in these).</summary>
    public ulong UserAddress { get; }

    public ulong Allocated => _next;

    public ulong Allocate(ulong size, ulong alignment)
    {
        var start = checked((_next + alignment - 1) & ~(alignment - 1));
        var end = checked(start + size);
        if (end > Size)
            throw new InvalidOperationException(
                $"synthetic guest RAM exhausted: need 0x{size:x} more bytes at 0x{start:x}, RAM is 0x{Size:x}; raise SyntheticGuestOptions.MemorySize");
        _next = end;
        return start;
    }

    public bool Contains(ulong gpa, ulong length) => gpa <= Size && length <= Size - gpa;

    public byte* Pointer(ulong gpa, ulong length)
    {
        if (!Contains(gpa, length))
            throw new ArgumentOutOfRangeException(nameof(gpa), $"guest range 0x{gpa:x}+0x{length:x} is outside the 0x{Size:x}-byte RAM");
        return (byte*)_mapping.HostAddress + gpa;
    }

    public Span<byte> Span(ulong gpa, int length) => new(Pointer(gpa, (ulong)length), length);

    public void Dispose()
    {
        _mapping.Dispose();
        Fd.Dispose();
    }
}
