namespace Vsock.Device.Virtio;

/// <summary>
/// A chain popped from the avail ring. <see cref="Buffers"/> is a view into a scratch array owned by the queue,
/// valid until the next <see cref="SplitQueue.TryPop"/> on that queue; copy what must outlive it.
/// </summary>
public readonly ref struct DescriptorChain
{
    /// <summary>
    /// A chain over caller-supplied buffers (tests, or chains built by other means). The lengths are summed
    /// here; nothing is checked against guest memory, so consumers still validate addresses.
    /// </summary>
    public DescriptorChain(ushort headIndex, ReadOnlySpan<GuestBuffer> buffers)
    {
        HeadIndex = headIndex;
        Buffers = buffers;
        ulong readable = 0, writable = 0;
        foreach (var b in buffers)
        {
            // Sums of at most int.MaxValue u32 lengths cannot overflow a u64.
            if (b.DeviceWritable)
                writable += b.Length;
            else
                readable += b.Length;
        }
        ReadableLength = readable;
        WritableLength = writable;
    }

    internal DescriptorChain(ushort headIndex, ReadOnlySpan<GuestBuffer> buffers, ulong readable, ulong writable)
    {
        HeadIndex = headIndex;
        Buffers = buffers;
        ReadableLength = readable;
        WritableLength = writable;
    }

    public ushort HeadIndex { get; }
    public ReadOnlySpan<GuestBuffer> Buffers { get; }
    /// <summary>Total bytes of the device-readable buffers.</summary>
    public ulong ReadableLength { get; }
    /// <summary>Total bytes of the device-writable buffers.</summary>
    public ulong WritableLength { get; }
}
