using Akka.Actor;

namespace Vsock.Actors.Device;

/// <summary>
/// Actors that own sockets and fds (devices, listeners, connections) are stopped on failure, never restarted (as
/// Akka.IO's <c>Tcp.ConnectionSupervisorStrategy</c>): a restart would keep a half-used resource or close it twice.
/// The parent sees <see cref="Terminated"/> and cleans up (an RST for a lost stream, a fresh device for a lost VM).
/// </summary>
public static class ResourceSupervision
{
    public static readonly SupervisorStrategy Strategy = new OneForOneStrategy(_ => Directive.Stop, loggingEnabled: true);
}
