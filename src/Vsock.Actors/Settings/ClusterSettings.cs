namespace Vsock.Actors.Settings;

/// <summary>
/// This daemon as a node of an Akka.Cluster of daemons (<c>--cluster-bind</c>, <c>--cluster-seeds</c>, or the YAML
/// <c>cluster:</c> mapping): VMs of every node that share a group reach each other by CID. Without it the daemon
/// starts no remoting at all. Validated by the launcher before the actor system starts.
/// </summary>
public sealed record ClusterSettings
{
    /// <summary>Where this node's Akka.Remote endpoint listens, and the address the other nodes know it by.</summary>
    public required ClusterEndpoint Bind { get; init; }

    /// <summary>The seed nodes, in order (Akka joins the first that answers; the first one may start the cluster).</summary>
    public required IReadOnlyList<ClusterEndpoint> Seeds { get; init; }

    /// <summary>
    /// The actor system's name (the one given to <c>AddAkka</c>): part of every node's address, so the same on every
    /// node of the cluster. The launcher's is <c>vhost-device-vsock</c>.
    /// </summary>
    public required string ActorSystemName { get; init; }

    public override string ToString() => $"cluster node {Bind}, seeds {string.Join('+', Seeds)}";
}

/// <summary>A node's host (a name or an IP literal, IPv6 without brackets) and TCP port.</summary>
public readonly record struct ClusterEndpoint(string Host, int Port)
{
    /// <summary><c>host:port</c>, or <c>[v6]:port</c>: the spelling the command line takes and Akka addresses use.</summary>
    public override string ToString() => Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}
