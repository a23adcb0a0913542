using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Vsock.Device.Memory;

/// <summary>
/// The guest's RAM as the VMM described it (SET_MEM_TABLE / ADD_MEM_REG): a small, immutable set of
/// non-overlapping regions. Every access is bounds-checked with overflow-safe arithmetic, so a guest
/// address can never make us touch memory outside a mapped region; an access that does not fit in one
/// region throws <see cref="GuestMemoryException"/>.
///
/// Immutable on purpose: a new table builds a new <see cref="GuestMemory"/>, and the owner of the old
/// one disposes it once nothing reads through it any more (the device actor owns it; guest memory is
/// never referenced from a message).
/// </summary>
public sealed unsafe class GuestMemory : IDisposable
{
    private readonly MemoryRegion[] _regions;

    public static GuestMemory Empty { get; } = new([]);

    public GuestMemory(IReadOnlyList<MemoryRegion> regions)
    {
        var sorted = regions.OrderBy(r => r.GuestPhysicalAddress).ToArray();
        for (var i = 1; i < sorted.Length; i++)
        {
            if (sorted[i - 1].OverlapsGuest(sorted[i]))
                throw new GuestMemoryException($"memory regions overlap: {sorted[i - 1]} and {sorted[i]}");
        }
        _regions = sorted;
    }

    public IReadOnlyList<MemoryRegion> Regions => _regions;

    /// <summary>
    /// The first region whose backing file was pulled away (<see cref="MemoryRegion.IsPoisoned"/>), or null.
    /// A read per region (QEMU sends one to a few): cheap enough to ask after every ring turn.
    /// </summary>
    public MemoryRegion? PoisonedRegion
    {
        get
        {
            var regions = _regions;
            for (var i = 0; i < regions.Length; i++)
            {
                if (regions[i].IsPoisoned)
                    return regions[i];
            }
            return null;
        }
    }

    /// <summary>A new table with one more region (ADD_MEM_REG). Regions are shared, not copied.</summary>
    public GuestMemory With(MemoryRegion region) => new([.. _regions, region]);

    /// <summary>A new table without the region matching (gpa, uaddr, size) (REM_MEM_REG); the removed region is returned for disposal.</summary>
    public GuestMemory Without(ulong gpa, ulong userAddress, ulong size, out MemoryRegion? removed)
    {
        var match = _regions.FirstOrDefault(r => r.GuestPhysicalAddress == gpa && r.UserAddress == userAddress && r.Size == size);
        removed = match;
        return match is null ? this : new GuestMemory(_regions.Where(r => !ReferenceEquals(r, match)).ToArray());
    }

    /// <summary>
    /// Host pointer for [gpa, gpa+length) if the range lies inside one region. A zero-length range
    /// is valid at any address inside a region (and at its end).
    /// </summary>
    public bool TryGetHostPointer(ulong gpa, ulong length, out byte* pointer)
    {
        var regions = _regions;
        for (var i = 0; i < regions.Length; i++)
        {
            var r = regions[i];
            if (gpa < r.GuestPhysicalAddress)
                break; // sorted: no later region can hold it
            var offset = gpa - r.GuestPhysicalAddress;
            if (offset > r.Size || length > r.Size - offset || (offset == r.Size && length != 0))
                continue;
            pointer = (byte*)r.HostAddress + offset;
            return true;
        }
        pointer = null;
        return false;
    }

    public byte* GetHostPointer(ulong gpa, ulong length)
    {
        if (!TryGetHostPointer(gpa, length, out var p))
            throw new GuestMemoryException($"guest range 0x{gpa:x}+0x{length:x} is not inside guest memory");
        return p;
    }

    /// <summary>A span over guest memory. Valid only while this table is alive; never put it in a message.</summary>
    public Span<byte> GetSpan(ulong gpa, int length)
    {
        if (length < 0)
            throw new GuestMemoryException($"negative length {length}");
        return new Span<byte>(GetHostPointer(gpa, (ulong)length), length);
    }

    /// <summary>Translates a VMM virtual address (SET_VRING_ADDR) into a guest physical address.</summary>
    public bool TryUserToGuest(ulong userAddress, out ulong gpa)
    {
        foreach (var r in _regions)
        {
            if (r.ContainsUser(userAddress))
            {
                gpa = r.GuestPhysicalAddress + (userAddress - r.UserAddress);
                return true;
            }
        }
        gpa = 0;
        return false;
    }

    public ulong UserToGuest(ulong userAddress) =>
        TryUserToGuest(userAddress, out var gpa)
            ? gpa
            : throw new GuestMemoryException($"VMM address 0x{userAddress:x} is not inside any memory region");

    public void Read(ulong gpa, Span<byte> destination) => GetSpan(gpa, destination.Length).CopyTo(destination);

    public void Write(ulong gpa, ReadOnlySpan<byte> source) => source.CopyTo(GetSpan(gpa, source.Length));

    // Ring fields are little-endian and naturally aligned in guest memory; the volatile accessors
    // are the ones the split-ring code uses for indices shared with the guest.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ushort ReadUInt16(ulong gpa) => BinaryPrimitives.ReadUInt16LittleEndian(new ReadOnlySpan<byte>(GetHostPointer(gpa, 2), 2));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint ReadUInt32(ulong gpa) => BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(GetHostPointer(gpa, 4), 4));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong ReadUInt64(ulong gpa) => BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(GetHostPointer(gpa, 8), 8));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteUInt16(ulong gpa, ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(new Span<byte>(GetHostPointer(gpa, 2), 2), value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteUInt32(ulong gpa, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(GetHostPointer(gpa, 4), 4), value);

    /// <summary>Acquire-load of a 16-bit ring index the guest publishes (avail.idx, used_event).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ushort VolatileReadUInt16(ulong gpa)
    {
        var p = GetHostPointer(gpa, 2);
        if (((nint)p & 1) != 0)
            throw new GuestMemoryException($"ring index at 0x{gpa:x} is misaligned");
        return Volatile.Read(ref *(ushort*)p); // little-endian host (x86_64/aarch64)
    }

    /// <summary>Release-store of a 16-bit ring index we publish (used.idx, avail_event).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void VolatileWriteUInt16(ulong gpa, ushort value)
    {
        var p = GetHostPointer(gpa, 2);
        if (((nint)p & 1) != 0)
            throw new GuestMemoryException($"ring index at 0x{gpa:x} is misaligned");
        Volatile.Write(ref *(ushort*)p, value);
    }

    public void Dispose()
    {
        foreach (var r in _regions)
            r.Dispose();
    }
}
