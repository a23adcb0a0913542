using Akka.Hosting;
using Vsock.Actors.Device;
using Vsock.Actors.Routing;
using Vsock.Actors.Settings;

namespace Vsock.Actors.Hosting;

/// <summary>
/// The one way to put VsockActors into an Akka.Hosting actor system: the launcher and the tests
/// both call <see cref="WithVsockDevices"/>. It loads the dispatcher template (hocon/vsock.hocon), starts the
/// <see cref="GroupRouterActor"/> and one supervised device per VM, and registers
/// <see cref="GroupRouterActor"/> and <see cref="VsockDevicesActor"/> in the <see cref="ActorRegistry"/>.
/// </summary>
public static class VsockHostingExtensions
{
    /// <summary>Where the dispatcher definitions are copied at build time (resolved against the app, never the working directory).</summary>
    public static string HoconPath => Path.Combine(AppContext.BaseDirectory, "hocon", "vsock.hocon");

    public static AkkaConfigurationBuilder WithVsockDevices(this AkkaConfigurationBuilder builder, IReadOnlyList<VmSettings> vms)
    {
        ArgumentNullException.ThrowIfNull(vms);
        var duplicate = vms.GroupBy(v => v.GuestCid).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new ArgumentException($"guest CID {duplicate.Key} is configured for more than one VM", nameof(vms));

        // The per-VM dispatchers are derived from the template when each VM starts (VsockDispatchers.ForVm).
        return builder
            .AddHocon(VsockHocon.Read(), HoconAddMode.Prepend)
            .WithActors((system, registry) =>
            {
                var router = system.ActorOf(GroupRouterActor.Props(), "vsock-groups");
                registry.Register<GroupRouterActor>(router);
                var devices = system.ActorOf(VsockDevicesActor.Props(vms, router), "vsock");
                registry.Register<VsockDevicesActor>(devices);
            });
    }
}
