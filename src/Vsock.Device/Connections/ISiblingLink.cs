using Vsock.Device.Packets;

namespace Vsock.Device.Connections;

/// <summary>
/// How a <see cref="SiblingStream"/> reaches the other VM's device (the actor layer implements it: a message to
/// that device, which runs on its own VM's thread). The payload is a pooled array, copied out of our guest's
/// memory: the one copy of the hop between the two VMs' threads. Ownership of the array passes with the call.
/// </summary>
public interface ISiblingLink
{
    void Send(SiblingStream stream, in VsockHeader header, byte[]? payload);
}
