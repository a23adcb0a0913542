using Akka.Actor;
using Akka.Event;
using Vsock.Device.Packets;

namespace Vsock.Actors.Routing;

/// <summary>Messages of the <see cref="GroupRouterActor"/>.</summary>
public static class GroupRouterProtocol
{
    /// <summary>Device → router: this device serves <paramref name="Cid"/> in these groups. The sender is the device.</summary>
    public sealed record Register(ulong Cid, IReadOnlyList<string> Groups) : INoSerializationVerificationNeeded;

    public sealed record Registered(ulong Cid) : INoSerializationVerificationNeeded;

    public sealed record RegistrationRejected(ulong Cid, string Reason) : INoSerializationVerificationNeeded;

    /// <summary>Asks which CIDs are registered (tests, diagnostics): answers <see cref="Registrations"/>.</summary>
    public sealed class GetRegistrations
    {
        public static readonly GetRegistrations Instance = new();
    }

    public sealed record Registrations(IReadOnlyDictionary<ulong, IReadOnlyList<string>> GroupsByCid);

    /// <summary>
    /// A packet between sibling VMs, from the device of <c>Header.SrcCid</c> (the sender) to the device of
    /// <c>Header.DstCid</c>. A stream's first packets (the REQUEST) go through the router, which checks the groups and
    /// forwards it with the sender kept; after that the two devices know each other and send directly, so a packet
    /// crosses only the two VMs' threads. <see cref="Data"/> is a pooled array with <c>Header.Len</c> payload bytes,
    /// copied out of the sender's guest memory and owned by whoever holds the message.
    /// </summary>
    public sealed record SiblingPacket(VsockHeader Header, byte[]? Data) : INoSerializationVerificationNeeded;

    /// <summary>Router → sending device: <see cref="Header"/> could not be delivered (no such CID, or no group in common).</summary>
    public sealed record SiblingUnreachable(VsockHeader Header, string Reason) : INoSerializationVerificationNeeded;

    /// <summary>
    /// The guest of <paramref name="Cid"/> lost its state (its VMM went away or its device stopped): every
    /// stream with it is gone. Device → router, and router → every other device.
    /// </summary>
    public sealed record SiblingGuestReset(ulong Cid) : INoSerializationVerificationNeeded, IDeadLetterSuppression;
}
