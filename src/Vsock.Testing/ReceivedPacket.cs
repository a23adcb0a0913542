using Vsock.Testing.Packets;

namespace Vsock.Testing;

/// <summary>One packet the device put in the RX ring: its header, a copy of its payload, and the used length the device reported.</summary>
public sealed record ReceivedPacket(VsockHeader Header, byte[] Payload, uint UsedLength, DateTime ReceivedAt);
