using System.Net.Sockets;
using Akka.Actor;
using Akka.Event;
using Vsock.Device.Connections;
using Vsock.Device.Packets;

namespace Vsock.Actors.Protocol;

/// <summary>
/// Messages between a VM's <see cref="Device.DeviceActor"/> and its connection actors.
///
/// Ownership rule for payloads: guest memory is never referenced from a message. The device copies
/// TX payloads out of guest memory into arrays rented from <see cref="System.Buffers.ArrayPool{T}.Shared"/>;
/// whoever receives a message with such an array owns it and returns it to the pool when done.
/// </summary>
public static class DeviceProtocol
{
    /// <summary>Device → connection: a packet the guest sent on this stream. <see cref="Data"/> holds <c>Header.Len</c> payload bytes (RW only).</summary>
    public sealed record FromGuest(VsockHeader Header, byte[]? Data) : INoSerializationVerificationNeeded;

    /// <summary>
    /// Connection → device: a packet for the guest's RX ring. <see cref="Data"/> (pooled) carries <see cref="Length"/> bytes;
    /// the device returns it to the pool and answers <see cref="RxDelivered"/> once the bytes are in guest memory.
    /// </summary>
    public sealed record ToGuest(VsockHeader Header, byte[]? Data, int Length) : INoSerializationVerificationNeeded;

    /// <summary>Device → connection: one data packet of this connection reached the guest; it may read more from its host socket.</summary>
    public sealed class RxDelivered : INoSerializationVerificationNeeded, IDeadLetterSuppression
    {
        public static readonly RxDelivered Instance = new();
        private RxDelivered() { }
    }

    /// <summary>Host client (after its <c>CONNECT port</c> line) → device: open a stream to that guest port.</summary>
    public sealed record OpenToGuest(uint GuestPort) : INoSerializationVerificationNeeded;

    /// <summary>Device → host client: the stream's key (with the allocated host-side port); the client now sends REQUEST.</summary>
    public sealed record OpenedToGuest(ConnectionKey Key) : INoSerializationVerificationNeeded;

    /// <summary>Device → host client: the guest cannot be reached now (driver not running, no free port).</summary>
    public sealed record OpenRefused(string Reason) : INoSerializationVerificationNeeded;

    /// <summary>A host socket accepted for the VM (unix <c>uds-path</c> or AF_VSOCK <c>forward-listen</c>), handed to the device.</summary>
    public sealed record HostClientAccepted(Socket Socket, string Origin) : INoSerializationVerificationNeeded;
}
