using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Vsock.Actors.Device;
using Vsock.Testing;

namespace Vsock.Integration.Tests;

/// <summary>What <c>WithVsockDevices</c> sets up, seen from inside the actor system it hosts.</summary>
public sealed class HostingTests
{
    [Fact]
    public async Task Each_vm_runs_its_device_and_connections_on_its_own_dedicated_dispatcher()
    {
        await using var daemon = await DaemonHost.StartAsync(2);
        var registry = daemon.Services.GetRequiredService<ActorRegistry>();
        var devices = await registry.GetAsync<VsockDevicesActor>();
        foreach (var vm in daemon.Vms)
        {
            var supervisor = await devices.Ask<IActorRef>(new VsockDevicesActor.GetVm(vm.GuestCid), TimeSpan.FromSeconds(5));
            var current = await supervisor.Ask<VmSupervisor.CurrentDevice>(VmSupervisor.GetDevice.Instance, TimeSpan.FromSeconds(5));
            var cell = ((ActorRefWithCell)current.Device!).Underlying;
            Assert.Equal(VsockDispatchers.ForVm(vm.GuestCid), cell.Props.Dispatcher);
        }

        // A connection of VM 3 runs on VM 3's dispatcher too.
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        using var listener = guest.Listen(5000);
        var (host, reply) = await HostSide.ConnectAsync(daemon[0].UdsPath!, 5000, Scenario.Timeout);
        using var _ = host;
        Assert.Equal("OK 5000\n", reply);
        var vm3 = await devices.Ask<IActorRef>(new VsockDevicesActor.GetVm(3), TimeSpan.FromSeconds(5));
        var device = (await vm3.Ask<VmSupervisor.CurrentDevice>(VmSupervisor.GetDevice.Instance, TimeSpan.FromSeconds(5))).Device!;
        var connection = ((ActorRefWithCell)device).Underlying.ChildrenContainer.Children.Single();
        Assert.Equal(VsockDispatchers.ForVm(3), ((ActorRefWithCell)connection).Underlying.Props.Dispatcher);
    }

    [Fact]
    public async Task A_device_on_an_ordinary_dispatcher_runs_its_own_event_loop_and_serves()
    {
        // An actor system built by hand, without the vsock HOCON: the device and its connections run on
        // the default dispatcher and their fds are watched by a loop thread of the device's own.
        var directory = System.IO.Directory.CreateTempSubdirectory("vsit-").FullName;
        using var system = ActorSystem.Create("plain");
        try
        {
            var settings = new Vsock.Actors.Settings.VmSettings
            {
                GuestCid = 3,
                Socket = Path.Combine(directory, "vhost.sock"),
                UdsPath = Path.Combine(directory, "vm.vsock"),
            };
            var router = system.ActorOf(Vsock.Actors.Routing.GroupRouterActor.Props());
            system.ActorOf(DeviceActor.Props(settings, router, Akka.Dispatch.Dispatchers.DefaultDispatcherId));
            var deadline = DateTime.UtcNow + Scenario.Timeout;
            while (!File.Exists(settings.Socket) && DateTime.UtcNow < deadline)
                await Task.Delay(10);
            await using var guest = SyntheticGuest.Connect(settings.Socket);
            await Scenario.VmServesAsync(guest, settings.UdsPath);
            Scenario.AssertClean(guest);
        }
        finally
        {
            await system.Terminate();
            System.IO.Directory.Delete(directory, recursive: true);
        }
    }
}
