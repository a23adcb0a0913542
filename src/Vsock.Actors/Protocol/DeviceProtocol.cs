using Akka.Actor;
using Akka.Event;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Interop;

namespace Vsock.Actors.Protocol;

/// <summary>
/// Messages between a VM's <see cref="Device.DeviceActor"/> and its children (host listeners and connection actors).
///
/// No message carries guest memory or a packet: data moves between the guest and the host sockets inside the
/// device's turn, through the streams (see <see cref="Vsock.Device.Connections.VsockStream"/>), which the device and
/// its connections share on the VM's one event-loop thread. These messages only set streams up.
/// </summary>
public static class DeviceProtocol
{
    /// <summary>Where a host client came from.</summary>
    public enum HostOrigin
    {
        /// <summary>Accepted on <c>uds-path</c>: it speaks <c>CONNECT &lt;port&gt;</c> / <c>OK &lt;port&gt;</c> first.</summary>
        UdsPath,
        /// <summary>Accepted on a <c>forward-listen</c> AF_VSOCK port: forwarded to the same guest port at once.</summary>
        ForwardListen,
    }

    /// <summary>
    /// Listener → device: a host socket accepted for the VM (non-blocking, close-on-exec). The device owns it from
    /// now on: it becomes a stream with its own connection actor, or is closed. <see cref="Kind"/> is the listener's
    /// socket type, and so the vsock type of the stream (SEQPACKET from <c>uds-path_seqpacket</c>).
    /// </summary>
    public sealed record HostClientAccepted(SafeFileHandle Socket, HostOrigin Origin, uint Port, SocketKind Kind = SocketKind.Stream)
        : INoSerializationVerificationNeeded;

    /// <summary>Host-initiated or forwarded connection → device: give my stream a key and open it to this guest port.</summary>
    public sealed record OpenToGuest(uint GuestPort) : INoSerializationVerificationNeeded;

    /// <summary>Device → connection: the stream is open (its REQUEST is owed to the guest).</summary>
    public sealed class OpenedToGuest : INoSerializationVerificationNeeded
    {
        public static readonly OpenedToGuest Instance = new();
        private OpenedToGuest() { }
    }

    /// <summary>Device → connection: the guest cannot be reached now (driver not running, no free port).</summary>
    public sealed record OpenRefused(string Reason) : INoSerializationVerificationNeeded;

    /// <summary>
    /// Connection → device, from its PostStop: the connection actor stopped (the device frees its stream's key and
    /// resets the guest's stream if it was still open). Instead of DeathWatch, which costs two watch tables per actor.
    /// </summary>
    public sealed class ConnectionStopped : INoSerializationVerificationNeeded, IDeadLetterSuppression
    {
        public static readonly ConnectionStopped Instance = new();
        private ConnectionStopped() { }
    }

    /// <summary>Device → itself: one more turn at the TX ring (the last one used up its budget).</summary>
    internal sealed class DrainTx : INoSerializationVerificationNeeded, IDeadLetterSuppression
    {
        public static readonly DrainTx Instance = new();
        private DrainTx() { }
    }

    /// <summary>Device → itself: a turn at the RX ring (streams have something for the guest).</summary>
    internal sealed class DrainRx : INoSerializationVerificationNeeded, IDeadLetterSuppression
    {
        public static readonly DrainRx Instance = new();
        private DrainRx() { }
    }
}
