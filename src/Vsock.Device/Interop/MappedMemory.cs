using System.Runtime.InteropServices;

namespace Vsock.Device.Interop;

/// <summary>
/// Owns one mmap. A SafeHandle so the munmap happens exactly once however often it is disposed,
/// and still happens (from the finalizer) if an owner forgets; a mapping outlives the fd it came from.
/// A mapping may be guarded against SIGBUS (<see cref="SigbusGuard"/>): the guard is dropped before the
/// munmap, so it never repairs an address that was unmapped and reused.
/// </summary>
public sealed unsafe class MappedMemory : SafeHandle
{
    private int _guardSlot = -1;
    private int* _poisonCounter;

    /// <summary>An owner with no mapping yet; <see cref="Attach"/> gives it one.</summary>
    internal MappedMemory(nuint length)
        : base(IntPtr.Zero, ownsHandle: true)
    {
        Length = length;
    }

    /// <summary>Start of the mapping (page aligned); zero until mapped.</summary>
    public nint Address => handle;

    /// <summary>Bytes mapped (what munmap releases).</summary>
    public nuint Length { get; }

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>True when a SIGBUS inside this mapping is repaired instead of ending the process.</summary>
    public bool IsGuarded => _guardSlot >= 0;

    /// <summary>
    /// True once a SIGBUS inside the mapping was repaired: the file behind it was pulled away (the VMM
    /// truncated it) and the mapping now holds private zero pages. Reads one int; safe on any thread.
    /// </summary>
    public bool IsPoisoned => _poisonCounter != null && !IsClosed && Volatile.Read(ref *_poisonCounter) != 0;

    /// <summary>
    /// Maps <paramref name="length"/> bytes of <paramref name="fd"/> from <paramref name="offset"/> (page aligned)
    /// shared and read/write. Throws <see cref="LinuxException"/> when mmap fails.
    /// </summary>
    internal static MappedMemory MapShared(SafeHandle fd, long offset, nuint length)
    {
        var owner = new MappedMemory(length);
        var address = Libc.Mmap(0, length, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, offset);
        if (address == Libc.MAP_FAILED)
        {
            var error = LinuxException.FromLastError($"mmap of 0x{length:x} bytes at file offset 0x{offset:x}");
            owner.Dispose(); // never attached: releases nothing
            throw error;
        }
        owner.Attach(address);
        return owner;
    }

    internal void Attach(nint address) => SetHandle(address);

    /// <summary>Registers the whole mapping with the SIGBUS guard; false when the guard cannot take it.</summary>
    internal bool TryGuard()
    {
        if (IsInvalid || IsClosed)
            throw new InvalidOperationException("only a live mapping can be guarded");
        if (_guardSlot >= 0)
            return true;
        if (!SigbusGuard.TryRegister(handle, Length, out var slot, out var counter))
            return false;
        _guardSlot = slot;
        _poisonCounter = counter;
        return true;
    }

    protected override bool ReleaseHandle()
    {
        if (_guardSlot >= 0)
        {
            SigbusGuard.Unregister(_guardSlot);
            _guardSlot = -1;
            _poisonCounter = null;
        }
        return Libc.Munmap(handle, Length) == 0;
    }
}
