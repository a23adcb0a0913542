using System.Runtime.InteropServices;

namespace Vsock.Device.Virtio;

/// <summary>
/// <c>struct virtq_desc</c>: one 16-byte little-endian entry of a descriptor table (or of an indirect table).
/// The queue reads each entry once into a copy of this struct, so the guest changing the table while we walk
/// it cannot make us see two different values of one field.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VirtqDescriptor
{
    public const int Size = 16;

    public ulong Address;
    public uint Length;
    public ushort Flags;
    public ushort Next;
}
