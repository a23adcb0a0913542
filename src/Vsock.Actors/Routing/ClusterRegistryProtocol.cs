using Akka.Actor;

namespace Vsock.Actors.Routing;

/// <summary>
/// Messages of the cluster-wide sibling registry (<see cref="ClusterRegistryActor"/>) and its parent, the node's
/// <see cref="GroupRouterActor"/>. Only <see cref="NodeVms"/> crosses nodes (as the value of the replicated map);
/// the rest stay inside one node.
/// </summary>
public static class ClusterRegistryProtocol
{
    /// <summary>
    /// What one node serves: its VMs' CIDs and groups. The value under the node's own key in the replicated map
    /// (<see cref="ClusterRegistryActor.Key"/>); only that node writes it. <paramref name="Address"/> and
    /// <paramref name="Uid"/> name the node's incarnation, so a node restarted on the same address is a new writer and
    /// its old entry is recognised as stale.
    /// </summary>
    public sealed record NodeVms(string Address, int Uid, IReadOnlyList<NodeVm> Vms)
    {
        /// <summary>The key of this node's entry in the replicated map.</summary>
        public string Key => KeyOf(Address, Uid);

        public static string KeyOf(string address, int uid) => $"{address}#{uid}";

        public bool Equals(NodeVms? other) =>
            other is not null && Address == other.Address && Uid == other.Uid && Vms.SequenceEqual(other.Vms);

        public override int GetHashCode() => HashCode.Combine(Address, Uid, Vms.Count);
    }

    /// <summary>One VM of a node: its CID and groups.</summary>
    public sealed record NodeVm(ulong Cid, IReadOnlyList<string> Groups)
    {
        public bool Equals(NodeVm? other) => other is not null && Cid == other.Cid && Groups.SequenceEqual(other.Groups, StringComparer.Ordinal);

        public override int GetHashCode() => Cid.GetHashCode();
    }

    /// <summary>Router → registry: the VMs registered on this node now (after every change).</summary>
    public sealed record LocalVms(IReadOnlyDictionary<ulong, IReadOnlyList<string>> GroupsByCid) : INoSerializationVerificationNeeded;

    /// <summary>Registry → router (when it starts or restarts): send <see cref="LocalVms"/>.</summary>
    public sealed class RequestLocalVms : INoSerializationVerificationNeeded
    {
        public static readonly RequestLocalVms Instance = new();
        private RequestLocalVms() { }
    }

    /// <summary>A VM on another, live node: where its node's router is, and its groups.</summary>
    public sealed record RemoteVm(Address Node, IReadOnlyList<string> Groups, IActorRef Router)
    {
        public bool Equals(RemoteVm? other) =>
            other is not null && Node.Equals(other.Node) && Groups.SequenceEqual(other.Groups, StringComparer.Ordinal);

        public override int GetHashCode() => Node.GetHashCode();
    }

    /// <summary>
    /// Registry → router: the sibling VMs this node can reach on other nodes now, and this node's VMs that the cluster
    /// refuses (their CID is served by an older node). Sent whenever either changes; the router diffs it against the
    /// previous one to reset the streams that lost their peer.
    /// </summary>
    public sealed record ClusterView(IReadOnlyDictionary<ulong, RemoteVm> Remote, IReadOnlyDictionary<ulong, string> RefusedLocal)
        : INoSerializationVerificationNeeded
    {
        public static readonly ClusterView Empty = new(new Dictionary<ulong, RemoteVm>(), new Dictionary<ulong, string>());

        public bool Equals(ClusterView? other) =>
            other is not null && Same(Remote, other.Remote) && Same(RefusedLocal, other.RefusedLocal);

        public override int GetHashCode() => HashCode.Combine(Remote.Count, RefusedLocal.Count);

        private static bool Same<T>(IReadOnlyDictionary<ulong, T> a, IReadOnlyDictionary<ulong, T> b) =>
            a.Count == b.Count && a.All(e => b.TryGetValue(e.Key, out var v) && EqualityComparer<T>.Default.Equals(e.Value, v));
    }

    /// <summary>Asks the router for its current <see cref="ClusterView"/> (tests, diagnostics).</summary>
    public sealed class GetClusterView
    {
        public static readonly GetClusterView Instance = new();
        private GetClusterView() { }
    }
}
