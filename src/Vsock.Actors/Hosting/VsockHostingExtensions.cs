using Akka.Cluster.Hosting;
using Akka.Configuration;
using Akka.Hosting;
using Akka.Remote.Hosting;
using Vsock.Actors.Device;
using Vsock.Actors.Routing;
using Vsock.Actors.Settings;

namespace Vsock.Actors.Hosting;

/// <summary>
/// The one way to put VsockActors into an Akka.Hosting actor system: the launcher and the tests
/// both call <see cref="WithVsockDevices"/>. It loads the dispatcher template (hocon/vsock.hocon), starts the
/// <see cref="GroupRouterActor"/> and one supervised device per VM, and registers
/// <see cref="GroupRouterActor"/> and <see cref="VsockDevicesActor"/> in the <see cref="ActorRegistry"/>.
/// With <see cref="ClusterSettings"/> the actor system is also an Akka.Cluster node (Akka.Remote on exactly the
/// bind address, the settings of hocon/vsock-cluster.hocon) and the router starts the cluster-wide registry;
/// without them no remoting is configured at all.
/// </summary>
public static class VsockHostingExtensions
{
    /// <summary>Where the dispatcher definitions are copied at build time (resolved against the app, never the working directory).</summary>
    public static string HoconPath => VsockHocon.PathOf(VsockHocon.Dispatchers);

    /// <summary>Cluster settings: failure detection, downing, Distributed Data, and the serializer bindings of the messages that cross nodes.</summary>
    public static string ClusterHoconPath => VsockHocon.PathOf(VsockHocon.Cluster);

    /// <summary>
    /// The operator's own cluster settings (TLS, say), read when the file exists and taking precedence over
    /// <see cref="ClusterHoconPath"/>; <c>hocon/vsock-cluster.local.hocon.example</c> shows what goes in it.
    /// </summary>
    public static string ClusterLocalHoconPath => Path.Combine(AppContext.BaseDirectory, "hocon", "vsock-cluster.local.hocon");

    public static AkkaConfigurationBuilder WithVsockDevices(this AkkaConfigurationBuilder builder, IReadOnlyList<VmSettings> vms, ClusterSettings? cluster = null)
    {
        ArgumentNullException.ThrowIfNull(vms);
        var duplicate = vms.GroupBy(v => v.GuestCid).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new ArgumentException($"guest CID {duplicate.Key} is configured for more than one VM", nameof(vms));

        if (cluster is not null)
            builder = builder.WithVsockCluster(cluster);

        // The per-VM dispatchers are derived from the template when each VM starts (VsockDispatchers.ForVm).
        return builder
            .AddHocon(VsockHocon.Read(VsockHocon.Dispatchers), HoconAddMode.Prepend)
            .WithActors((system, registry) =>
            {
                var router = system.ActorOf(GroupRouterActor.Props(clustered: cluster is not null), "vsock-groups");
                registry.Register<GroupRouterActor>(router);
                var devices = system.ActorOf(VsockDevicesActor.Props(vms, router), "vsock");
                registry.Register<VsockDevicesActor>(devices);
            });
    }

    /// <summary>The Akka address of a node of this actor system: what seed node entries look like.</summary>
    /// <param name="protocol"><c>akka.tcp</c>, or <c>akka.ssl.tcp</c> with Akka.Remote's TLS.</param>
    public static string NodeAddress(string protocol, string actorSystemName, ClusterEndpoint endpoint) => $"{protocol}://{actorSystemName}@{endpoint}";

    private static AkkaConfigurationBuilder WithVsockCluster(this AkkaConfigurationBuilder builder, ClusterSettings cluster)
    {
        // Prepend puts a block in front of everything added so far: the operator's file goes last so that it wins.
        var hocon = VsockHocon.Read(VsockHocon.Cluster);
        var local = File.Exists(ClusterLocalHoconPath) ? File.ReadAllText(ClusterLocalHoconPath) : null;
        builder = builder.AddHocon(hocon, HoconAddMode.Prepend);
        if (local is not null)
            builder = builder.AddHocon(local, HoconAddMode.Prepend);
        // With TLS turned on (in the operator's file) every node's address has the akka.ssl.tcp protocol, seeds included.
        var settings = ConfigurationFactory.ParseString(local ?? string.Empty).WithFallback(ConfigurationFactory.ParseString(hocon));
        var protocol = settings.GetBoolean("akka.remote.dot-netty.tcp.enable-ssl", false) ? "akka.ssl.tcp" : "akka.tcp";
        return builder
            .WithRemoting(new RemoteOptions { HostName = cluster.Bind.Host, Port = cluster.Bind.Port })
            .WithClustering(new ClusterOptions
            {
                SeedNodes = cluster.Seeds.Select(s => NodeAddress(protocol, cluster.ActorSystemName, s)).ToArray(),
            });
    }
}
