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
        await using var daemon = await InProcessDaemon.StartAsync(2);
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
        using var host = await HostVsock.ConnectAsync(daemon[0].UdsPath!, 5000, Scenario.Timeout);
        var vm3 = await devices.Ask<IActorRef>(new VsockDevicesActor.GetVm(3), TimeSpan.FromSeconds(5));
        var device = (await vm3.Ask<VmSupervisor.CurrentDevice>(VmSupervisor.GetDevice.Instance, TimeSpan.FromSeconds(5))).Device!;
        // Its children: the uds-path listeners (stream and SEQPACKET) and the stream's connection actor.
        var children = ((ActorRefWithCell)device).Underlying.ChildrenContainer.Children.ToList();
        Assert.Equal(3, children.Count);
        var connection = children.Single(c => c.Path.Name is not ("uds" or "uds-seqpacket"));
        Assert.All(children, c => Assert.Equal(VsockDispatchers.ForVm(3), ((ActorRefWithCell)c).Underlying.Props.Dispatcher));
        Assert.Equal(VsockDispatchers.ForVm(3), ((ActorRefWithCell)connection).Underlying.Props.Dispatcher);
    }

    [Fact]
    public async Task A_device_started_off_its_event_loop_refuses_to_run_and_says_why()
    {
        // One dispatcher mode: a device must run on its VM's event loop (it lends guest memory to its streams,
        // which is only safe on that one thread). Started elsewhere, it stops before binding anything.
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
            var errors = new List<string>();
            var listener = system.ActorOf(Props.Create(() => new ErrorCollector(errors)));
            system.EventStream.Subscribe(listener, typeof(Akka.Event.Error));
            var device = system.ActorOf(DeviceActor.Props(settings, router, Akka.Dispatch.Dispatchers.DefaultDispatcherId));
            var deadline = DateTime.UtcNow + Scenario.Timeout;
            while (!device.IsNobody() && DateTime.UtcNow < deadline && !((ActorRefWithCell)device).Underlying.IsTerminated)
                await Task.Delay(10);
            Assert.True(((ActorRefWithCell)device).Underlying.IsTerminated);
            Assert.False(File.Exists(settings.Socket));
            Assert.False(File.Exists(settings.UdsPath));
            bool Said()
            {
                lock (errors)
                    return errors.Any(e => e.Contains("must run on a vsock event-loop dispatcher"));
            }
            while (!Said() && DateTime.UtcNow < deadline)
                await Task.Delay(10);
            Assert.True(Said());
        }
        finally
        {
            await system.Terminate();
            System.IO.Directory.Delete(directory, recursive: true);
        }
    }

    private sealed class ErrorCollector : ReceiveActor
    {
        public ErrorCollector(List<string> errors) => Receive<Akka.Event.Error>(e =>
        {
            lock (errors)
                errors.Add(e.Cause?.ToString() ?? e.Message.ToString() ?? "");
        });
    }
}
