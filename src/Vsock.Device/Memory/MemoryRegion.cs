namespace Vsock.Device.Memory;

/// <summary>
/// One contiguous range of guest physical memory mapped into this process.
/// <see cref="HostAddress"/> points at the byte for <see cref="GuestPhysicalAddress"/>.
/// The region owns its mapping through <see cref="Owner"/> (an mmap of the VMM's memfd, or native
/// memory in tests) and releases it on <see cref="Dispose"/>.
/// </summary>
public sealed class MemoryRegion : IDisposable
{
    public MemoryRegion(ulong guestPhysicalAddress, ulong size, ulong userAddress, nint hostAddress, IDisposable? owner)
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
    }

    public ulong GuestPhysicalAddress { get; }
    public ulong Size { get; }
    /// <summary>The VMM's virtual address of the region (SET_VRING_ADDR speaks in these).</summary>
    public ulong UserAddress { get; }
    public nint HostAddress { get; }
    public IDisposable? Owner { get; }

    /// <summary>Last guest physical address inside the region (inclusive; never overflows).</summary>
    public ulong LastGuestPhysicalAddress => GuestPhysicalAddress + (Size - 1);

    public bool ContainsGuest(ulong gpa) => gpa >= GuestPhysicalAddress && gpa - GuestPhysicalAddress < Size;

    public bool ContainsUser(ulong uaddr) => uaddr >= UserAddress && uaddr - UserAddress < Size;

    public bool OverlapsGuest(MemoryRegion other) =>
        GuestPhysicalAddress <= other.LastGuestPhysicalAddress && other.GuestPhysicalAddress <= LastGuestPhysicalAddress;

    public void Dispose() => Owner?.Dispose();

    public override string ToString() =>
        $"gpa 0x{GuestPhysicalAddress:x}..0x{LastGuestPhysicalAddress:x} uaddr 0x{UserAddress:x} size 0x{Size:x}";
}
