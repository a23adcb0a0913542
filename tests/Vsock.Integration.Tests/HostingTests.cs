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
}
