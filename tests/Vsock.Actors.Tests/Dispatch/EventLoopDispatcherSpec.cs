using Akka.Actor;
using Akka.TestKit.Xunit2;
using Vsock.Actors.Device;
using Vsock.Actors.Tests.TestSupport;
using Vsock.Device.Threading;

namespace Vsock.Actors.Tests.Dispatch;

/// <summary>Actors on a VM's dispatcher run on that VM's event loop: one loop (one thread) per VM.</summary>
public sealed class EventLoopDispatcherSpec() : TestKit(VsockTestKitConfig.Config)
{
    private sealed class WhereAmI : ReceiveActor
    {
        public WhereAmI() => ReceiveAny(_ => Sender.Tell((EventLoop.Current, Environment.CurrentManagedThreadId)));
    }

    private static Task<(EventLoop? Loop, int Thread)> AskAsync(IActorRef actor) =>
        actor.Ask<(EventLoop?, int)>("where", TimeSpan.FromSeconds(10));

    [Fact]
    public async Task Actors_of_one_vm_share_its_loop_thread_and_another_vm_has_its_own()
    {
        var vm7 = VsockDispatchers.ForVm(Sys, 7);
        var a = await AskAsync(Sys.ActorOf(Props.Create<WhereAmI>().WithDispatcher(vm7)));
        var b = await AskAsync(Sys.ActorOf(Props.Create<WhereAmI>().WithDispatcher(vm7)));
        var other = await AskAsync(Sys.ActorOf(Props.Create<WhereAmI>().WithDispatcher(VsockDispatchers.ForVm(Sys, 8))));
        var plain = await AskAsync(Sys.ActorOf(Props.Create<WhereAmI>()));

        Assert.Equal(VsockDispatchers.ForVm(7), vm7);
        Assert.NotNull(a.Loop);
        Assert.Same(a.Loop, b.Loop);
        Assert.Equal(a.Thread, b.Thread);
        Assert.NotNull(other.Loop);
        Assert.NotSame(a.Loop, other.Loop);
        Assert.Null(plain.Loop);
    }

    [Fact]
    public void The_per_vm_dispatcher_takes_the_template_settings()
    {
        var dispatcher = Sys.Dispatchers.Lookup(VsockDispatchers.ForVm(Sys, 9));
        Assert.Equal(Sys.Settings.Config.GetInt($"{VsockDispatchers.TemplatePath}.throughput"), dispatcher.Throughput);
        Assert.Equal(VsockDispatchers.ForVm(9), dispatcher.Id);
    }
}
