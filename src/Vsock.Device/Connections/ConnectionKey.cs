namespace Vsock.Device.Connections;

/// <summary>
/// Identifies one stream of a VM's guest, seen from the guest: the peer end (<see cref="PeerCid"/>:<see cref="PeerPort"/>:
/// the host, CID 2 or the CID the guest asked for, or a sibling VM) and the guest's own port. For a guest TX packet
/// that is (dst_cid, dst_port, src_port). Unlike the reference (whose key is only the two ports) the peer CID is
/// part of the key, so a host stream and a sibling stream may share port numbers.
/// </summary>
public readonly record struct ConnectionKey(ulong PeerCid, uint PeerPort, uint GuestPort)
{
    /// <summary>The key of a packet our guest sent.</summary>
    public static ConnectionKey FromGuestPacket(ulong dstCid, uint dstPort, uint srcPort) => new(dstCid, dstPort, srcPort);

    public override string ToString() => $"{PeerCid}:{PeerPort}<->guest:{GuestPort}";
}
