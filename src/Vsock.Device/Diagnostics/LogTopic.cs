namespace Vsock.Device.Diagnostics;

/// <summary>
/// What a rate-limited log line is about. Lines a guest can provoke at will (one per packet, per chain or
/// per kick) are limited per topic and per VM, so a hostile guest cannot fill the disk (<see cref="DeviceLog"/>).
/// </summary>
public enum LogTopic
{
    /// <summary>A descriptor chain the device could not use (TX or RX).</summary>
    BadChain,
    /// <summary>A TX packet that fails to parse, or of an unsupported type.</summary>
    BadPacket,
    /// <summary>A packet whose src_cid is not the guest's CID.</summary>
    SpoofedCid,
    /// <summary>A guest that sends beyond the credit it was given, or after SHUTDOWN.</summary>
    CreditViolation,
    /// <summary>A packet for a stream we do not know, or an unexpected op on one we do.</summary>
    StreamProtocol,
    /// <summary>A host socket that failed, was refused or could not be accepted.</summary>
    HostSocket,
    /// <summary>Resource limits reached (connections, device replies).</summary>
    Limit,
    /// <summary>A guest that did not answer a REQUEST, or did not close a stream, in time.</summary>
    Timeout,
    /// <summary>A guest REQUEST to a CID it cannot reach (no such VM, no group in common).</summary>
    Unreachable,
    /// <summary>Streams dropped because the guest's driver stopped (a guest can reset its device in a loop).</summary>
    StreamsDropped,
}
