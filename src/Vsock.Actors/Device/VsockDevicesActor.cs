using Akka.Actor;
using Vsock.Actors.Settings;

namespace Vsock.Actors.Device;

/// <summary>
/// The root of the VMs: one <see cref="VmSupervisor"/> child per configured VM, named <c>vm-&lt;cid&gt;</c>.
/// Registered in the <see cref="Akka.Hosting.ActorRegistry"/> so a host or a test can reach the VMs.
/// </summary>
public sealed class VsockDevicesActor : UntypedActor
{
    private readonly IReadOnlyList<VmSettings> _vms;
    private readonly IActorRef _groupRouter;

    public VsockDevicesActor(IReadOnlyList<VmSettings> vms, IActorRef groupRouter)
    {
        _vms = vms;
        _groupRouter = groupRouter;
    }

    public static Props Props(IReadOnlyList<VmSettings> vms, IActorRef groupRouter) =>
        Akka.Actor.Props.Create(() => new VsockDevicesActor(vms, groupRouter));

    public static string VmName(ulong cid) => $"vm-{cid}";

    /// <summary>Asks for the supervisor of a VM: answers the <see cref="IActorRef"/> or <see cref="ActorRefs.Nobody"/>.</summary>
    public sealed record GetVm(ulong Cid);

    protected override void PreStart()
    {
        foreach (var vm in _vms)
            Context.ActorOf(VmSupervisor.Props(vm, _groupRouter), VmName(vm.GuestCid));
    }

    // A supervisor never holds resources itself; if one fails, restarting it (and so its VM) is right.
    protected override SupervisorStrategy SupervisorStrategy() => Akka.Actor.SupervisorStrategy.DefaultStrategy;

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case GetVm get:
                Sender.Tell(Context.Child(VmName(get.Cid)));
                break;
            default:
                Unhandled(message);
                break;
        }
    }
}
