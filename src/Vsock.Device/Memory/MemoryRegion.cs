using Vsock.Device.Interop;

namespace Vsock.Device.Memory;

/// <summary>What keeps a region's backing file from being pulled away under us (see <c>MmapMemoryMapper</c>).</summary>
[Flags]
public enum RegionProtection
{
    None = 0,
    /// <summary>The VMM sealed the file against shrinking (QEMU's memory-backend-memfd does by default).</summary>
    SealedByVmm = 0x1,
    /// <summary>The file allowed sealing and we added F_SEAL_SHRINK.</summary>
    SealedByDevice = 0x2,
    /// <summary>A SIGBUS in the mapping is repaired (<see cref="SigbusGuard"/>) and marks the region poisoned.</summary>
    SigbusGuard = 0x4,
}

/// <summary>
/// One contiguous range of guest physical memory mapped into this process.
/// <see cref="HostAddress"/> points at the byte for <see cref="GuestPhysicalAddress"/>.
/// The region owns its mapping through <see cref="Owner"/> (an mmap of the VMM's memfd, or native
/// memory in tests) and releases it on <see cref="Dispose"/>.
/// </summary>
public sealed class MemoryRegion : IDisposable
{
    private readonly MappedMemory? _mapping;

    public MemoryRegion(ulong guestPhysicalAddress, ulong size, ulong userAddress, nint hostAddress, IDisposable? owner,
        RegionProtection protection = RegionProtection.None)
    {
        if (size == 0)
            throw new ArgumentOutOfRangeException(nameof(size), "a memory region cannot be empty");
        if (guestPhysicalAddress > ulong.MaxValue - (size - 1))
            throw new ArgumentOutOfRangeException(nameof(size), "guest physical range wraps around 2^64");
        if (userAddress > ulong.MaxValue - (size - 1))
            throw new ArgumentOutOfRangeException(nameof(size), "user address range wraps around 2^64");
        GuestPhysicalAddress = guestPhysicalAddress;
        Size = size;
        UserAddress = userAddress;
        HostAddress = hostAddress;
        Owner = owner;
        Protection = protection;
        _mapping = owner as MappedMemory;
    }

    public ulong GuestPhysicalAddress { get; }
    public ulong Size { get; }
    /// <summary>The VMM's virtual address of the region (SET_VRING_ADDR speaks in these).</summary>
    public ulong UserAddress { get; }
    public nint HostAddress { get; }
    public IDisposable? Owner { get; }

    public RegionProtection Protection { get; }

    /// <summary>
    /// True once the file behind the region was pulled away (a SIGBUS in it was repaired with zero pages):
    /// its contents mean nothing any more and the session that uses it must end. One memory read.
    /// </summary>
    public bool IsPoisoned => _mapping is { IsPoisoned: true };

    /// <summary>Last guest physical address inside the region (inclusive; never overflows).</summary>
    public ulong LastGuestPhysicalAddress => GuestPhysicalAddress + (Size - 1);

    public bool ContainsGuest(ulong gpa) => gpa >= GuestPhysicalAddress && gpa - GuestPhysicalAddress < Size;

    public bool ContainsUser(ulong uaddr) => uaddr >= UserAddress && uaddr - UserAddress < Size;

    public bool OverlapsGuest(MemoryRegion other) =>
        GuestPhysicalAddress <= other.LastGuestPhysicalAddress && other.GuestPhysicalAddress <= LastGuestPhysicalAddress;

    public void Dispose() => Owner?.Dispose();

    public override string ToString() =>
        $"gpa 0x{GuestPhysicalAddress:x}..0x{LastGuestPhysicalAddress:x} uaddr 0x{UserAddress:x} size 0x{Size:x}" +
        (Protection == RegionProtection.None ? "" : $" ({Describe(Protection)})");

    private static string Describe(RegionProtection protection)
    {
        var parts = new List<string>(2);
        if ((protection & RegionProtection.SealedByVmm) != 0)
            parts.Add("sealed against shrinking by the VMM");
        if ((protection & RegionProtection.SealedByDevice) != 0)
            parts.Add("F_SEAL_SHRINK added");
        if ((protection & RegionProtection.SigbusGuard) != 0)
            parts.Add("SIGBUS-guarded");
        return string.Join(", ", parts);
    }
}
