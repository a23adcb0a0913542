using Akka.Actor;
using Akka.Dispatch;

namespace Vsock.Actors.Device;

/// <summary>
/// Dispatchers of the device layer. Each VM gets one dedicated thread, generated at start-up by
/// <see cref="Hosting.VsockHostingExtensions"/> (<see cref="ForVm"/>): the VM's <see cref="DeviceActor"/>
/// and all its connection actors run on it, so a packet passes between them without waking another
/// thread (see docs/BENCHMARKS.md), and a busy VM never competes with another VM's actors. Without that
/// configuration (an actor system built by hand) the device runs on the shared pinned dispatcher of
/// <c>hocon/vsock.hocon</c> and its connections on the default dispatcher.
/// </summary>
public static class VsockDispatchers
{
    public const string Device = "vsock.device-dispatcher";

    public static string ForVm(ulong cid) => $"vsock.vm-{cid}-dispatcher";

    /// <summary>HOCON for the dedicated one-thread dispatcher of VM <paramref name="cid"/>.</summary>
    public static string VmDispatcherHocon(ulong cid) =>
        $"{ForVm(cid)} {{ type = ForkJoinDispatcher, throughput = 64, dedicated-thread-pool {{ thread-count = 1, threadtype = background }} }}";

    /// <summary>The dispatcher for VM <paramref name="cid"/>'s device actor.</summary>
    public static string DeviceFor(ActorSystem system, ulong cid) =>
        system.Settings.Config.HasPath(ForVm(cid)) ? ForVm(cid) : Device;

    /// <summary>The dispatcher for the connection actors of a device running on <paramref name="deviceDispatcher"/>.</summary>
    public static string ConnectionsFor(string deviceDispatcher) =>
        deviceDispatcher == Device ? Dispatchers.DefaultDispatcherId : deviceDispatcher;
}
