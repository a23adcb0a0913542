namespace Vsock.Device.Connections;

/// <summary>
/// Identifies one stream between the guest and a peer, seen from the guest: the peer end
/// (<see cref="LocalCid"/>:<see cref="LocalPort"/>: the host, CID 2, or a sibling VM) and the guest's own
/// port. For a guest TX packet that is (dst_cid, dst_port, src_port). Unlike the reference (whose key
/// is only the two ports) the peer CID is part of the key, so a host stream and a sibling stream may
/// share port numbers.
/// </summary>
public readonly record struct ConnectionKey(ulong LocalCid, uint LocalPort, uint GuestPort)
{
    public override string ToString() => $"{LocalCid}:{LocalPort}<->guest:{GuestPort}";
}
