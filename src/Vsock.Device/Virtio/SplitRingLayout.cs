namespace Vsock.Device.Virtio;

/// <summary>
/// Byte layout of the three split-ring areas (virtio 1.2 §2.7): sizes, alignments and field offsets.
/// <code>
/// avail: le16 flags | le16 idx | le16 ring[N] | le16 used_event
/// used:  le16 flags | le16 idx | { le32 id; le32 len } ring[N] | le16 avail_event
/// </code>
/// </summary>
public static class SplitRingLayout
{
    public const int DescriptorTableAlignment = 16;
    public const int AvailRingAlignment = 2;
    public const int UsedRingAlignment = 4;

    /// <summary>avail.flags bit: the driver asks not to be interrupted (ignored with EVENT_IDX).</summary>
    public const ushort AvailFlagNoInterrupt = 1;
    /// <summary>used.flags bit: the device asks not to be kicked (ignored with EVENT_IDX).</summary>
    public const ushort UsedFlagNoNotify = 1;

    public const int FlagsOffset = 0;
    public const int IdxOffset = 2;
    public const int RingOffset = 4;
    public const int UsedElementSize = 8;

    public static ulong DescriptorTableBytes(ushort size) => (ulong)size * VirtqDescriptor.Size;

    /// <summary>Includes <c>used_event</c>; the spec sizes the area this way whether or not EVENT_IDX is negotiated.</summary>
    public static ulong AvailRingBytes(ushort size) => 6 + 2 * (ulong)size;

    /// <summary>Includes <c>avail_event</c>.</summary>
    public static ulong UsedRingBytes(ushort size) => 6 + (ulong)UsedElementSize * size;

    public static ulong UsedEventOffset(ushort size) => RingOffset + 2 * (ulong)size;

    public static ulong AvailEventOffset(ushort size) => RingOffset + (ulong)UsedElementSize * size;
}
