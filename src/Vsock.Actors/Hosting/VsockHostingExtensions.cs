using Akka.Configuration;
using Akka.Hosting;
using Vsock.Actors.Device;
using Vsock.Actors.Routing;
using Vsock.Actors.Settings;

namespace Vsock.Actors.Hosting;

/// <summary>
/// The one way to put VsockActors into an Akka.Hosting actor system: the launcher and the tests
/// both call <see cref="WithVsockDevices"/>. It loads the dispatcher HOCON, starts the
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

        var hocon = VsockHocon.Read();
        // Each VM's dispatcher is shaped like the fallback one, so the file's spin time applies to all.
        var spin = ConfigurationFactory.ParseString(hocon)
            .GetInt($"{VsockDispatchers.Device}.event-loop.spin-microseconds", VsockDispatchers.DefaultSpinMicroseconds);
        return builder
            .AddHocon(hocon, HoconAddMode.Prepend)
            .AddHocon(string.Join('\n', vms.Select(vm => VsockDispatchers.VmDispatcherHocon(vm.GuestCid, spin))), HoconAddMode.Prepend)
            .WithActors((system, registry) =>
            {
                var router = system.ActorOf(GroupRouterActor.Props(), "vsock-groups");
                registry.Register<GroupRouterActor>(router);
                var devices = system.ActorOf(VsockDevicesActor.Props(vms, router), "vsock");
                registry.Register<VsockDevicesActor>(devices);
            });
    }
}
