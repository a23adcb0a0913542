using System.Runtime.InteropServices;

namespace Vsock.Device.Interop;

/// <summary>
/// Owns one mmap. A SafeHandle so the munmap happens exactly once however often it is disposed,
/// and still happens (from the finalizer) if an owner forgets; a mapping outlives the fd it came from.
/// </summary>
public sealed class MappedMemory : SafeHandle
{
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

    internal void Attach(nint address) => SetHandle(address);

    protected override bool ReleaseHandle() => Libc.Munmap(handle, Length) == 0;
}
