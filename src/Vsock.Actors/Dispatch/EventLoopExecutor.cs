using Akka.Configuration;
using Akka.Dispatch;
using Akka.Event;
using Vsock.Device.Threading;

namespace Vsock.Actors.Dispatch;

/// <summary>
/// An Akka executor that runs mailboxes on an <see cref="EventLoop"/>: one thread that also waits on the VM's fds
/// (kicks, vhost-user socket, host sockets). Actors on a dispatcher with this executor find the loop as
/// <see cref="EventLoop.Current"/> (the device does, in PreStart, and hands it to its children in their Props) and
/// register their fds with it, so readiness becomes a message to them without another thread.
///
/// Configured by name in a dispatcher section (see <c>vsock.vm-dispatcher</c> in hocon/vsock.hocon):
/// <code>
/// executor = "Vsock.Actors.Dispatch.EventLoopExecutorConfigurator, Vsock.Actors"
/// event-loop.spin-microseconds = 50
/// </code>
/// </summary>
public sealed class EventLoopExecutorConfigurator : ExecutorServiceConfigurator
{
    private readonly TimeSpan _spin;

    public EventLoopExecutorConfigurator(Config config, IDispatcherPrerequisites prerequisites)
        : base(config, prerequisites)
    {
        var micros = config.GetInt("event-loop.spin-microseconds", 0);
        if (micros < 0)
            throw new ConfigurationException($"event-loop.spin-microseconds must not be negative (is {micros})");
        _spin = TimeSpan.FromMicroseconds(micros);
    }

    public override ExecutorService Produce(string id)
    {
        var executor = new EventLoopExecutor(id, _spin);
        var events = Prerequisites.EventStream;
        // Akka's mailbox catches what actors throw; what reaches here is a fault of the loop's own work (a
        // readiness handler or an idle hook), logged so it is not lost; the loop carries on.
        executor.Loop.Failed += e => events.Publish(new Error(e, id, typeof(EventLoopExecutor), "event loop work item failed"));
        return executor;
    }
}

/// <summary>The executor service: hands each mailbox run to the loop's queue.</summary>
public sealed class EventLoopExecutor : ExecutorService
{
    private static readonly Action<object> RunRunnable = item => ((IRunnable)item).Run();

    public EventLoopExecutor(string id, TimeSpan spin) : base(id)
    {
        Loop = new EventLoop(id, RunRunnable, spin);
    }

    public EventLoop Loop { get; }

    public override void Execute(IRunnable run) => Loop.Execute(run);

    public override void Shutdown() => Loop.Dispose();
}
