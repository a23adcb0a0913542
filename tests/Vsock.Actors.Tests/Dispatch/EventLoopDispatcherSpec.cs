using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit.Xunit2;
using Vsock.Actors.Device;
using Vsock.Actors.Tests.TestSupport;
using Vsock.Device.Threading;
using Xunit;

namespace Vsock.Actors.Tests.Dispatch;

/// <summary>Actors on a vsock dispatcher run on an event loop, one loop (one thread) per dispatcher.</summary>
public sealed class EventLoopDispatcherSpec() : TestKit(
    ConfigurationFactory.ParseString(VsockDispatchers.VmDispatcherHocon(7)).WithFallback(VsockTestKitConfig.Config))
{
    private sealed class WhereAmI : ReceiveActor
    {
        public WhereAmI() => ReceiveAny(_ => Sender.Tell((EventLoop.Current, Environment.CurrentManagedThreadId)));
    }

    private (EventLoop? Loop, int Thread) Ask(IActorRef actor) =>
        actor.Ask<(EventLoop?, int)>("where", TimeSpan.FromSeconds(5)).Result;

    [Fact]
    public void Actors_of_one_vm_dispatcher_share_its_loop_thread_and_other_dispatchers_do_not()
    {
        var vm = VsockDispatchers.ForVm(7);
        var a = Ask(Sys.ActorOf(Props.Create<WhereAmI>().WithDispatcher(vm)));
        var b = Ask(Sys.ActorOf(Props.Create<WhereAmI>().WithDispatcher(vm)));
        var fallback = Ask(Sys.ActorOf(Props.Create<WhereAmI>().WithDispatcher(VsockDispatchers.Device)));
        var plain = Ask(Sys.ActorOf(Props.Create<WhereAmI>()));

        Assert.NotNull(a.Loop);
        Assert.Same(a.Loop, b.Loop);
        Assert.Equal(a.Thread, b.Thread);
        Assert.NotNull(fallback.Loop);
        Assert.NotSame(a.Loop, fallback.Loop);
        Assert.Null(plain.Loop);
    }
}
