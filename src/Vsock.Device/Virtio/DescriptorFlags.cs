namespace Vsock.Device.Virtio;

/// <summary><c>virtq_desc.flags</c> bits (virtio 1.2 §2.7.5).</summary>
public static class DescriptorFlags
{
    /// <summary>The chain continues at <c>next</c>.</summary>
    public const ushort Next = 1;
    /// <summary>The buffer is device-writable (otherwise device-readable).</summary>
    public const ushort Write = 2;
    /// <summary>The buffer holds a table of descriptors (VIRTIO_F_INDIRECT_DESC).</summary>
    public const ushort Indirect = 4;
}
