using Akka.Actor;
using Vsock.Device.Connections;
using Vsock.Device.Diagnostics;

namespace Vsock.Actors.Tests.TestSupport;

/// <summary>
/// Stands in for a VM's device as the parent of connection actors: it runs on the VM's dispatcher (so its children
/// share the VM's event loop), starts the children the test asks for, forwards what they send it to a probe (the
/// sender stays the child), reports their termination, and runs the test's code on the loop thread, where streams
/// may be touched.
/// </summary>
public sealed class FakeDevice : UntypedActor
{
    private readonly IActorRef _probe;

    public FakeDevice(IActorRef probe) => _probe = probe;

    public static Props Props(IActorRef probe, string dispatcher) =>
        Akka.Actor.Props.Create(() => new FakeDevice(probe)).WithDispatcher(dispatcher);

    /// <summary>Start a child from these props (on the device's dispatcher); the reply is its ref.</summary>
    public sealed record StartChild(Props Props);

    /// <summary>Run this on the VM's loop thread and reply with its result.</summary>
    public sealed record OnLoop(Func<object> Work);

    /// <summary>A child stopped (the device watches its connections).</summary>
    public sealed record ChildStopped(IActorRef Child);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case StartChild start:
                var child = Context.ActorOf(start.Props.WithDispatcher(Context.Props.Dispatcher));
                Context.Watch(child);
                Sender.Tell(child);
                break;
            case OnLoop run:
                Sender.Tell(run.Work());
                break;
            case Terminated terminated:
                _probe.Tell(new ChildStopped(terminated.ActorRef));
                break;
            default:
                _probe.Forward(message);
                break;
        }
    }
}

/// <summary>
/// The device's side of a stream (<see cref="IStreamHost"/>) for actor specs: a stream asking for an RX turn or
/// finishing is told to a probe, as messages, since the stream lives on the VM's loop thread.
/// </summary>
public sealed class ProbeStreamHost(IActorRef probe) : IStreamHost
{
    public sealed record RxWanted(VsockStream Stream);

    public sealed record Finished(VsockStream Stream);

    public ulong GuestCid => Packets.GuestCid;

    public DeviceLog Log => DeviceLog.Null;

    public DeviceCounters Counters { get; } = new();

    public void ScheduleRx(VsockStream stream) => probe.Tell(new RxWanted(stream));

    public void StreamFinished(VsockStream stream) => probe.Tell(new Finished(stream));
}
