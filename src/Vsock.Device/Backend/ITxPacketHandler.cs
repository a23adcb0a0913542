using Vsock.Device.Packets;

namespace Vsock.Device.Backend;

/// <summary>
/// Receives each well-formed TX packet while its chain is still checked out of the ring. The packet
/// points into guest memory: the handler copies what it keeps (never stores the packet or a span).
/// </summary>
public interface ITxPacketHandler
{
    void OnTxPacket(ref VsockPacket packet);
}
