using System.Net.Sockets;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Vsock.Actors.Device;
using Vsock.Actors.Routing;
using Vsock.Actors.Settings;
using Vsock.Actors.Tests.TestSupport;

namespace Vsock.Actors.Tests.Device;

/// <summary>Per-VM supervision with real sockets: a faulting device is replaced, its sibling VM is untouched.</summary>
public sealed class VmSupervisionSpec : TestKit, IDisposable
{
    // Generous: these specs start real devices (threads, sockets), and CI machines are small.
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
    private readonly string _dir = Directory.CreateTempSubdirectory("vsock-sup-").FullName;

    public VmSupervisionSpec() : base(VsockTestKitConfig.Config)
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

    private static async Task<VmSupervisor.CurrentDevice> DeviceOfAsync(IActorRef devices, ulong cid)
    {
        var vm = await devices.Ask<IActorRef>(new VsockDevicesActor.GetVm(cid), Wait);
        return await CurrentDeviceAsync(vm);
    }

    private static Task<VmSupervisor.CurrentDevice> CurrentDeviceAsync(IActorRef vm) =>
        vm.Ask<VmSupervisor.CurrentDevice>(VmSupervisor.GetDevice.Instance, Wait);

    [Fact]
    public async Task A_failing_device_is_replaced_and_its_sibling_is_untouched()
    {
        var router = Sys.ActorOf(GroupRouterActor.Props());
        var devices = Sys.ActorOf(VsockDevicesActor.Props([Vm(3), Vm(4)], router));
        await AwaitConditionAsync(() => Task.FromResult(File.Exists(Vm(3).Socket) && File.Exists(Vm(4).Socket) && File.Exists(Vm(3).UdsPath!)), Wait);
        var before3 = (await DeviceOfAsync(devices, 3)).Device!;
        var before4 = (await DeviceOfAsync(devices, 4)).Device!;
        Watch(before3);

        before3.Tell(Kill.Instance); // the device throws (ActorKilledException): stopped, as any failing fd owner

        await ExpectTerminatedAsync(before3, Wait);
        await AwaitConditionAsync(async () => await DeviceOfAsync(devices, 3) is { Device: not null, Restarts: 1 }, Wait);
        Assert.NotEqual(before3, (await DeviceOfAsync(devices, 3)).Device);
        Assert.Equal(before4, (await DeviceOfAsync(devices, 4)).Device);
        Assert.Equal(0, (await DeviceOfAsync(devices, 4)).Restarts);
        // The replacement listens again on the same paths.
        await AwaitConditionAsync(() => Task.FromResult(File.Exists(Vm(3).Socket) && File.Exists(Vm(3).UdsPath!)), Wait);
        using var vmm = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        vmm.Connect(new UnixDomainSocketEndPoint(Vm(3).Socket));
    }

    [Fact]
    public async Task A_host_client_is_closed_at_once_while_no_guest_driver_runs()
    {
        var router = Sys.ActorOf(GroupRouterActor.Props());
        Sys.ActorOf(VsockDevicesActor.Props([Vm(5)], router));
        await AwaitConditionAsync(() => Task.FromResult(File.Exists(Vm(5).UdsPath!)), Wait);
        using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        client.Connect(new UnixDomainSocketEndPoint(Vm(5).UdsPath!));
        client.ReceiveTimeout = 5000;
        // The daemon may close before, while or after we send our line: the client sees EOF, a reset
        // or a broken pipe, never "OK".
        try
        {
            client.Send("CONNECT 1234\n"u8.ToArray());
            Assert.Equal(0, client.Receive(new byte[16]));
        }
        catch (SocketException e)
        {
            Assert.Contains(e.SocketErrorCode, new[] { SocketError.ConnectionReset, SocketError.Shutdown, SocketError.ConnectionAborted });
        }
    }

    [Fact]
    public async Task A_duplicate_cid_is_refused_and_not_restarted()
    {
        var router = Sys.ActorOf(GroupRouterActor.Props());
        var first = Sys.ActorOf(VmSupervisor.Props(Vm(6), router));
        await AwaitConditionAsync(() => Task.FromResult(File.Exists(Vm(6).Socket)), Wait);
        await AwaitConditionAsync(async () =>
            (await router.Ask<GroupRouterProtocol.Registrations>(GroupRouterProtocol.GetRegistrations.Instance, Wait)).GroupsByCid.ContainsKey(6), Wait);
        var clash = Vm(6) with { Socket = Path.Combine(_dir, "other.socket"), UdsPath = Path.Combine(_dir, "other.vsock") };
        var second = Sys.ActorOf(VmSupervisor.Props(clash, router));
        await AwaitConditionAsync(async () => (await CurrentDeviceAsync(second)).Device is null, Wait);
        // Long enough for a restart to have happened had one been scheduled.
        await Task.Delay(VmSupervisor.RestartDelay * 2);
        Assert.Null((await CurrentDeviceAsync(second)).Device);
        Assert.NotNull((await CurrentDeviceAsync(first)).Device);
        Assert.False(File.Exists(clash.Socket)); // the refused device cleaned up after itself
    }

    [Fact]
    public async Task Stopping_a_device_removes_the_socket_files_it_created()
    {
        var router = Sys.ActorOf(GroupRouterActor.Props());
        var vm = Sys.ActorOf(VmSupervisor.Props(Vm(7), router));
        await AwaitConditionAsync(() => Task.FromResult(File.Exists(Vm(7).Socket) && File.Exists(Vm(7).UdsPath!)), Wait);
        Watch(vm);
        Sys.Stop(vm);
        await ExpectTerminatedAsync(vm, Wait);
        await AwaitConditionAsync(() => Task.FromResult(!File.Exists(Vm(7).Socket) && !File.Exists(Vm(7).UdsPath!)), Wait);
    }
}
