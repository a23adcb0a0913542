using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Vsock.Actors.Dispatch;

namespace Vsock.Actors.Device;

/// <summary>
/// The device layer's one dispatcher mode: each VM gets its own event loop (<see cref="EventLoopExecutor"/>), a
/// dispatcher <c>vsock.vm-&lt;cid&gt;-dispatcher</c> derived from the template <c>vsock.vm-dispatcher</c> in
/// <c>hocon/vsock.hocon</c>. The VM's <see cref="DeviceActor"/>, its listeners and connection actors and all its fds
/// (kicks, vhost-user socket, host sockets) live on that one thread: a packet wakes one thread, passes between them
/// as calls and queue operations on it, and a busy VM never competes with another VM's actors.
/// </summary>
public static class VsockDispatchers
{
    /// <summary>The mailbox of connection actors (<see cref="CompactMailbox"/>).</summary>
    public const string ConnectionMailbox = "vsock.connection-mailbox";

    /// <summary>The HOCON path of the per-VM dispatcher template.</summary>
    public const string TemplatePath = "vsock.vm-dispatcher";

    /// <summary>The dispatcher id of VM <paramref name="cid"/>.</summary>
    public static string ForVm(ulong cid) => $"vsock.vm-{cid}-dispatcher";

    /// <summary>
    /// VM <paramref name="cid"/>'s dispatcher, registered on first use from the template (so it and its loop thread
    /// outlive device restarts). Akka.Hosting has no typed API for dispatchers; this derives one without building
    /// HOCON text from settings.
    /// </summary>
    public static string ForVm(ActorSystem system, ulong cid)
    {
        var id = ForVm(cid);
        var dispatchers = system.Dispatchers;
        if (dispatchers.HasDispatcher(id))
            return id;
        if (!system.Settings.Config.HasPath(TemplatePath))
            throw new ConfigurationException($"{TemplatePath} is not configured: load hocon/vsock.hocon (WithVsockDevices does)");
        var config = ConfigurationFactory.ParseString($"id = \"{id}\"")
            .WithFallback(system.Settings.Config.GetConfig(TemplatePath))
            .WithFallback(dispatchers.DefaultDispatcherConfig);
        dispatchers.RegisterConfigurator(id, new DispatcherConfigurator(config, dispatchers.Prerequisites));
        return id;
    }
}
