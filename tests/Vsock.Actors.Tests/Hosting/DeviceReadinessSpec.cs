using Akka.Actor;
using Akka.TestKit.Xunit2;
using Vsock.Actors.Device;
using Vsock.Actors.Hosting;
using Vsock.Actors.Routing;
using Vsock.Actors.Settings;
using Vsock.Actors.Tests.TestSupport;

namespace Vsock.Actors.Tests.Hosting;

/// <summary>Devices announce that they listen; <see cref="DeviceReadiness"/> waits for every configured VM.</summary>
public sealed class DeviceReadinessSpec : TestKit, IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
    private readonly string _dir = Directory.CreateTempSubdirectory("vsock-ready-").FullName;

    public DeviceReadinessSpec() : base(VsockTestKitConfig.Config)
    {
    }

    public new void Dispose()
    {
        base.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private VmSettings Vm(ulong cid) => new()
    {
        GuestCid = cid,
        Socket = Path.Combine(_dir, $"vhost{cid}.socket"),
        UdsPath = Path.Combine(_dir, $"vm{cid}.vsock"),
    };

    [Fact]
    public void A_device_announces_itself_once_its_sockets_exist_and_again_when_replaced()
    {
        Sys.EventStream.Subscribe(TestActor, typeof(DeviceListening));
        var devices = Sys.ActorOf(VsockDevicesActor.Props([Vm(3), Vm(4)], Sys.ActorOf(GroupRouterActor.Props())));

        var announced = new HashSet<ulong>();
        for (int i = 0; i < 2; i++)
        {
            var listening = ExpectMsg<DeviceListening>(Wait);
            Assert.True(File.Exists(Vm(listening.GuestCid).Socket) && File.Exists(Vm(listening.GuestCid).UdsPath!));
            announced.Add(listening.GuestCid);
        }
        Assert.Equal([3UL, 4UL], announced.Order());

        var vm3 = devices.Ask<IActorRef>(new VsockDevicesActor.GetVm(3), Wait).Result;
        var device3 = vm3.Ask<VmSupervisor.CurrentDevice>(VmSupervisor.GetDevice.Instance, Wait).Result.Device!;
        device3.Tell(Kill.Instance); // fails the device: its supervisor starts a new one, which announces itself again
        Assert.Equal(3UL, ExpectMsg<DeviceListening>(Wait).GuestCid);
    }

    [Fact]
    public void Readiness_completes_when_every_configured_vm_has_announced_itself()
    {
        var readiness = new DeviceReadiness([3, 4]);
        var watcher = Sys.ActorOf(Props.Create(() => new DeviceReadinessActor(readiness)));
        Sys.EventStream.Subscribe(watcher, typeof(DeviceListening));
        Watch(watcher);

        Sys.EventStream.Publish(new DeviceListening(3));
        Sys.EventStream.Publish(new DeviceListening(99)); // not configured here
        Sys.EventStream.Publish(new DeviceListening(3));
        ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        Assert.False(readiness.AllListening.IsCompleted);

        Sys.EventStream.Publish(new DeviceListening(4));
        Assert.True(readiness.AllListening.Wait(Wait));
        ExpectTerminated(watcher, Wait);
    }

    [Fact]
    public void No_vm_means_ready_at_once()
    {
        Assert.True(new DeviceReadiness([]).AllListening.IsCompletedSuccessfully);
    }
}
