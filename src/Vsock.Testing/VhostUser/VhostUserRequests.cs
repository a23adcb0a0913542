namespace Vsock.Testing.VhostUser;

/// <summary>Front-end request codes (QEMU docs/interop/vhost-user.rst), the ones a vsock VMM uses and a few more for hostile tests.</summary>
public static class VhostUserRequest
{
    public const uint GetFeatures = 1;
    public const uint SetFeatures = 2;
    public const uint SetOwner = 3;
    public const uint ResetOwner = 4;
    public const uint SetMemTable = 5;
    public const uint SetLogBase = 6;
    public const uint SetLogFd = 7;
    public const uint SetVringNum = 8;
    public const uint SetVringAddr = 9;
    public const uint SetVringBase = 10;
    public const uint GetVringBase = 11;
    public const uint SetVringKick = 12;
    public const uint SetVringCall = 13;
    public const uint SetVringErr = 14;
    public const uint GetProtocolFeatures = 15;
    public const uint SetProtocolFeatures = 16;
    public const uint GetQueueNum = 17;
    public const uint SetVringEnable = 18;
    public const uint GetConfig = 24;
    public const uint SetConfig = 25;
    public const uint GetMaxMemSlots = 36;
    public const uint AddMemReg = 37;
    public const uint RemMemReg = 38;
}

/// <summary>Header flag bits (version in bits 0-1).</summary>
public static class VhostUserFlags
{
    public const uint Version = 1;
    public const uint Reply = 1u << 2;
    public const uint NeedReply = 1u << 3;
}

/// <summary>Virtio feature bits a vsock front end negotiates.</summary>
public static class VirtioFeatures
{
    /// <summary>VIRTIO_VSOCK_F_SEQPACKET (virtio 1.2; Linux 5.14+ accepts it when offered).</summary>
    public const ulong VsockSeqpacket = 1ul << 1;
    public const ulong NotifyOnEmpty = 1ul << 24;
    public const ulong IndirectDesc = 1ul << 28;
    public const ulong EventIdx = 1ul << 29;
    /// <summary>VHOST_USER_F_PROTOCOL_FEATURES: rings start disabled and need SET_VRING_ENABLE.</summary>
    public const ulong ProtocolFeatures = 1ul << 30;
    public const ulong Version1 = 1ul << 32;
}

/// <summary>vhost-user protocol feature bits.</summary>
public static class VhostUserProtocolFeatures
{
    public const ulong Mq = 1ul << 0;
    public const ulong ReplyAck = 1ul << 3;
    public const ulong Config = 1ul << 9;
    /// <summary>VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS: ADD_MEM_REG / REM_MEM_REG (QEMU uses it for memory hotplug).</summary>
    public const ulong ConfigureMemSlots = 1ul << 15;

    /// <summary>What this front end (like QEMU 7.2's vhost-user-vsock) is willing to use.</summary>
    public const ulong Wanted = Mq | ReplyAck | Config;
}
