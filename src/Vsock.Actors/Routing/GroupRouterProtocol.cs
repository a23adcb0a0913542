using Akka.Actor;

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
}
