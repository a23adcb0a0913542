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
    /// <summary>
    /// Device → connection: a packet the guest sent on this stream. <see cref="Data"/> holds <c>Header.Len</c> payload bytes (RW only).
    /// One per TX packet, so the device rents it from a pool and the connection actor recycles it once
    /// handled (a class, not a record, for that reason); <c>new FromGuest(...)</c> makes an unpooled one.
    /// </summary>
    public sealed class FromGuest : INoSerializationVerificationNeeded
    {
        private static readonly MessagePool<FromGuest> Pool = new(() => new FromGuest { _pooled = true }, 4096);
        private bool _pooled;

        public FromGuest(VsockHeader header, byte[]? data)
        {
            Header = header;
            Data = data;
        }

        private FromGuest()
        {
        }

        public VsockHeader Header { get; private set; }
        public byte[]? Data { get; private set; }

        internal static FromGuest Rent(in VsockHeader header, byte[]? data)
        {
            var message = Pool.Rent();
            message.Header = header;
            message.Data = data;
            return message;
        }

        /// <summary>The receiver is done with the message (its <see cref="Data"/> already owned elsewhere or returned).</summary>
        internal void Recycle()
        {
            if (!_pooled)
                return;
            Header = default;
            Data = null;
            Pool.Return(this);
        }

        public override string ToString() => $"FromGuest {{ Header = {Header}, Data = {Data?.Length.ToString() ?? "null"} }}";
    }

    /// <summary>
    /// Connection → device: a packet for the guest's RX ring. <see cref="Data"/> (pooled) carries <see cref="Length"/> bytes;
    /// the device returns it to the pool and answers <see cref="RxDelivered"/> once the bytes are in guest memory.
    /// Pooled like <see cref="FromGuest"/>: the connection rents it, the device recycles it after queueing the packet.
    /// </summary>
    public sealed class ToGuest : INoSerializationVerificationNeeded
    {
        private static readonly MessagePool<ToGuest> Pool = new(() => new ToGuest { _pooled = true }, 4096);
        private bool _pooled;

        public ToGuest(VsockHeader header, byte[]? data, int length)
        {
            Header = header;
            Data = data;
            Length = length;
        }

        private ToGuest()
        {
        }

        public VsockHeader Header { get; private set; }
        public byte[]? Data { get; private set; }
        public int Length { get; private set; }

        internal static ToGuest Rent(in VsockHeader header, byte[]? data, int length)
        {
            var message = Pool.Rent();
            message.Header = header;
            message.Data = data;
            message.Length = length;
            return message;
        }

        /// <summary>The device has queued the packet (or dropped it); the object may be reused.</summary>
        internal void Recycle()
        {
            if (!_pooled)
                return;
            Header = default;
            Data = null;
            Length = 0;
            Pool.Return(this);
        }

        public override string ToString() => $"ToGuest {{ Header = {Header}, Length = {Length} }}";
    }

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
