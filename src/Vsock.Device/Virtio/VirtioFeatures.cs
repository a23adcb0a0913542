namespace Vsock.Device.Virtio;

/// <summary>
/// Feature bit numbers (not masks) that matter to a split-ring vsock device. A mask is <c>1UL &lt;&lt; bit</c>.
/// </summary>
public static class VirtioFeatures
{
    /// <summary>virtio-vsock: VIRTIO_VSOCK_F_SEQPACKET, SOCK_SEQPACKET streams (virtio 1.2; Linux 5.14+).</summary>
    public const int VsockSeqpacket = 1;
    /// <summary>Legacy: notify the driver when the avail ring runs empty, even if it suppressed notifications.</summary>
    public const int NotifyOnEmpty = 24;
    public const int RingIndirectDesc = 28;
    public const int RingEventIdx = 29;
    /// <summary>vhost-user: VHOST_USER_F_PROTOCOL_FEATURES (shares the numbering with virtio bits).</summary>
    public const int ProtocolFeatures = 30;
    public const int Version1 = 32;

    public static ulong Bit(int bit) => 1UL << bit;
}
