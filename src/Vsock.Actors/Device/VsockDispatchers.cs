using Akka.Actor;
using Vsock.Actors.Dispatch;

namespace Vsock.Actors.Device;

/// <summary>
/// Dispatchers of the device layer. Each VM gets one event-loop thread (<see cref="EventLoopExecutor"/>),
/// generated at start-up by <see cref="Hosting.VsockHostingExtensions"/> (<see cref="ForVm"/>): the VM's
/// <see cref="DeviceActor"/>, all its connection actors and all its fds (kicks, vhost-user socket, host
/// sockets) live on it, so a packet wakes one thread and then passes between actors as queue operations
/// on that thread (docs/BENCHMARKS.md), and a busy VM never competes with another VM's actors. Without
/// that configuration (an actor system built by hand) devices and their connections share the one
/// event-loop dispatcher of <c>hocon/vsock.hocon</c>.
/// </summary>
public static class VsockDispatchers
{
    public const string Device = "vsock.device-dispatcher";

    /// <summary>How long an idle VM thread polls before it sleeps: cheaper than a wake-up under load.</summary>
    public const int DefaultSpinMicroseconds = 50;

    public static string ForVm(ulong cid) => $"vsock.vm-{cid}-dispatcher";

    /// <summary>HOCON for the event-loop dispatcher of VM <paramref name="cid"/>.</summary>
    public static string VmDispatcherHocon(ulong cid, int spinMicroseconds = DefaultSpinMicroseconds) =>
        $"{ForVm(cid)} {{ type = Dispatcher, executor = \"{EventLoopExecutorConfigurator.TypeName}\", throughput = 64, " +
        $"event-loop.spin-microseconds = {spinMicroseconds} }}";

    /// <summary>The dispatcher for VM <paramref name="cid"/>'s device actor.</summary>
    public static string DeviceFor(ActorSystem system, ulong cid) =>
        system.Settings.Config.HasPath(ForVm(cid)) ? ForVm(cid) : Device;
}
