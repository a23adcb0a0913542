using Microsoft.Win32.SafeHandles;
using Vsock.Device.Interop;

namespace Vsock.Testing.Virtio;

/// <summary>
/// The synthetic guest's RAM: one shared file (a memfd, or a /dev/shm file, see
/// <see cref="GuestMemoryBacking"/>), mapped here and handed to the back end with SET_MEM_TABLE as a
/// single region at guest physical address 0. Space is handed out by a bump allocator (rings, buffers,
/// scratch); nothing is ever freed, a guest lives for one test.
/// </summary>
internal sealed unsafe class GuestRam : IDisposable
{
    private readonly MappedMemory _mapping;
    private ulong _next;

    public GuestRam(long size, ulong userAddress, GuestMemoryBacking backing)
    {
        if (size < 1 << 20)
            throw new ArgumentOutOfRangeException(nameof(size), "guest RAM must be at least 1 MiB");
        Fd = CreateFile(size, backing);
        try
        {
            // A plain shared mapping, as QEMU has: no seals added, no SIGBUS guard (the daemon's business).
            _mapping = MappedMemory.MapShared(Fd, 0, (nuint)size);
        }
        catch
        {
            Fd.Dispose();
            throw;
        }
        Size = (ulong)size;
        UserAddress = userAddress;
        Backing = backing;
        _next = 4096; // GPA 0 stays unused so a zeroed descriptor never points at real data
    }

    /// <summary>The file the back end maps (owned here).</summary>
    public SafeFileHandle Fd { get; }

    public GuestMemoryBacking Backing { get; }

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
        return (byte*)_mapping.Address + gpa;
    }

    public Span<byte> Span(ulong gpa, int length) => new(Pointer(gpa, (ulong)length), length);

    public void Dispose()
    {
        _mapping.Dispose();
        Fd.Dispose();
    }

    private static SafeFileHandle CreateFile(long size, GuestMemoryBacking backing)
    {
        switch (backing)
        {
            case GuestMemoryBacking.SealedMemFd:
                var sealedFd = MemFd.Create("synthetic-guest-ram", size, allowSealing: true);
                try
                {
                    MemFd.AddSeals(sealedFd, FileSeals.Grow | FileSeals.Shrink | FileSeals.Seal); // QEMU's memfd_backend_memory_alloc
                }
                catch
                {
                    sealedFd.Dispose();
                    throw;
                }
                return sealedFd;
            case GuestMemoryBacking.SealableMemFd:
                return MemFd.Create("synthetic-guest-ram", size, allowSealing: true);
            case GuestMemoryBacking.UnsealableMemFd:
                return MemFd.Create("synthetic-guest-ram", size, allowSealing: false);
            case GuestMemoryBacking.ShmFile:
                var path = $"/dev/shm/synthetic-guest-ram-{Guid.NewGuid():N}";
                var fd = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite);
                try
                {
                    File.Delete(path); // the open fd keeps it; nothing is left behind
                    MemFd.Truncate(fd, size);
                }
                catch
                {
                    fd.Dispose();
                    throw;
                }
                return fd;
            default:
                throw new ArgumentOutOfRangeException(nameof(backing), backing, null);
        }
    }
}
