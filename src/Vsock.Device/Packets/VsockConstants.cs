namespace Vsock.Device.Packets;

/// <summary><c>virtio_vsock_hdr.op</c> values (virtio 1.2 §5.10.6).</summary>
public static class VsockOp
{
    public const ushort Invalid = 0;
    public const ushort Request = 1;
    public const ushort Response = 2;
    public const ushort Rst = 3;
    public const ushort Shutdown = 4;
    public const ushort Rw = 5;
    public const ushort CreditUpdate = 6;
    public const ushort CreditRequest = 7;

    /// <summary>The spec's name for <paramref name="op"/> (without the VIRTIO_VSOCK_OP_ prefix), for logs.</summary>
    public static string Name(ushort op) => op switch
    {
        Invalid => "INVALID",
        Request => "REQUEST",
        Response => "RESPONSE",
        Rst => "RST",
        Shutdown => "SHUTDOWN",
        Rw => "RW",
        CreditUpdate => "CREDIT_UPDATE",
        CreditRequest => "CREDIT_REQUEST",
        _ => $"OP({op})",
    };
}

/// <summary><c>virtio_vsock_hdr.type</c> values.</summary>
public static class VsockType
{
    public const ushort Stream = 1;
    public const ushort SeqPacket = 2;
}

/// <summary>
/// SHUTDOWN flags as masks. The spec's listing writes bit numbers 0/1, but every implementation (Linux uapi,
/// Firecracker, vhost-device) uses masks 1 and 2, and so do we.
/// </summary>
public static class VsockShutdownFlags
{
    public const uint Receive = 1;
    public const uint Send = 2;
    public const uint Both = Receive | Send;
}

/// <summary>SEQPACKET flags of an RW packet (virtio 1.2 §5.10.6.6, Linux uapi virtio_vsock.h).</summary>
public static class VsockSeqFlags
{
    /// <summary>VIRTIO_VSOCK_SEQ_EOM: the last packet of a message.</summary>
    public const uint Eom = 1;
    /// <summary>VIRTIO_VSOCK_SEQ_EOR: the last packet of a record (the sender's MSG_EOR).</summary>
    public const uint Eor = 2;
}

public static class VsockConstants
{
    /// <summary>sizeof(struct virtio_vsock_hdr).</summary>
    public const int HeaderSize = 44;
    /// <summary>The largest payload we accept or produce in one packet (Linux VIRTIO_VSOCK_MAX_PKT_BUF_SIZE).</summary>
    public const uint MaxPacketPayload = 64 * 1024;
    /// <summary>VMADDR_CID_HOST: the CID the guest addresses the host by.</summary>
    public const ulong HostCid = 2;
}
