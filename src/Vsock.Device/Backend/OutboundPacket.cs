using Vsock.Device.Packets;

namespace Vsock.Device.Backend;

/// <summary>
/// A packet waiting for an RX buffer: a header and, for RW, a payload in a pooled array owned by the
/// packet until <see cref="IVsockDeviceEvents.PacketDelivered"/> or <see cref="IVsockDeviceEvents.PacketDropped"/>
/// hands it back. A payload larger than one guest RX buffer goes out as several RW packets with the
/// same header and a smaller <c>len</c> each.
/// </summary>
public struct OutboundPacket
{
    public VsockHeader Header;
    public byte[]? Data;
    public int Offset;
    public int Length;
    /// <summary>Who to tell when the payload has reached the guest (the connection's actor).</summary>
    public object? Owner;

    public static OutboundPacket Control(in VsockHeader header, object? owner = null) =>
        new() { Header = header, Owner = owner };
}
