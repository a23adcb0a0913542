using Akka.Actor;
using Akka.Cluster;
using static Vsock.Actors.Routing.ClusterRegistryProtocol;

namespace Vsock.Actors.Routing;

/// <summary>
/// The pure part of the cluster registry: from the replicated claims (every node's <see cref="NodeVms"/>), which
/// nodes are live and how old they are, and this node's own VMs, which CID is served where.
///
/// A CID claimed by more than one live node goes to the <b>oldest</b> node (Akka's member age: the node that
/// became Up first, ties by address); every node computes the same answer from the same membership, without a
/// clock or a coordinator. The other claims are refused: a refused VM on this node is listed in
/// <see cref="ClusterView.RefusedLocal"/>; a refused VM elsewhere is simply not routed to. Claims of nodes that are
/// not live (joining, unreachable, disconnected, leaving the cluster, or an old incarnation) are ignored, so their
/// CIDs disappear from the view at once.
/// </summary>
internal static class ClusterViewBuilder
{
    /// <param name="self">This node.</param>
    /// <param name="selfRank">This node's age rank among the live nodes (0 = oldest); <see cref="int.MaxValue"/> while it is not Up.</param>
    /// <param name="liveRanks">The other live nodes and their age ranks.</param>
    /// <param name="claims">Every node's entry of the replicated map, with the node it names.</param>
    /// <param name="local">This node's VMs.</param>
    /// <param name="routerOf">The router of a node (an actor reference resolved without a round trip).</param>
    /// <param name="conflicts">One line per CID claimed by more than one live node, for the log.</param>
    public static ClusterView Build(
        UniqueAddress self,
        int selfRank,
        IReadOnlyDictionary<UniqueAddress, int> liveRanks,
        IEnumerable<(UniqueAddress Node, NodeVms Vms)> claims,
        IReadOnlyDictionary<ulong, IReadOnlyList<string>> local,
        Func<Address, IActorRef> routerOf,
        out IReadOnlyList<string> conflicts)
    {
        var best = new Dictionary<ulong, Claim>();
        var losers = new Dictionary<ulong, List<Address>>();
        foreach (var (cid, groups) in local)
            best[cid] = new Claim(selfRank, self.Address, groups, IsLocal: true);

        // Sorted, so that equal claims are met in the same order on every node (the log lines then agree too).
        foreach (var (node, vms) in claims.OrderBy(c => c.Node.Address, Member.AddressOrdering).ThenBy(c => c.Node.Uid))
        {
            if (node.Equals(self) || !liveRanks.TryGetValue(node, out var rank))
                continue;
            foreach (var vm in vms.Vms)
            {
                var claim = new Claim(rank, node.Address, vm.Groups, IsLocal: false);
                if (!best.TryGetValue(vm.Cid, out var current))
                {
                    best[vm.Cid] = claim;
                    continue;
                }
                var (winner, loser) = claim.IsOlderThan(current) ? (claim, current) : (current, claim);
                best[vm.Cid] = winner;
                if (!losers.TryGetValue(vm.Cid, out var list))
                    losers[vm.Cid] = list = [];
                list.Add(loser.Node);
            }
        }

        var remote = new Dictionary<ulong, RemoteVm>();
        var refused = new Dictionary<ulong, string>();
        foreach (var (cid, claim) in best)
        {
            if (!claim.IsLocal)
                remote[cid] = new RemoteVm(claim.Node, claim.Groups, routerOf(claim.Node));
            if (!claim.IsLocal && local.ContainsKey(cid))
                refused[cid] = $"CID {cid} is already served by the VM on {claim.Node}, a node that joined the cluster earlier";
        }
        conflicts = losers
            .OrderBy(e => e.Key)
            .Select(e => $"CID {e.Key} is configured on more than one node: served by {best[e.Key].Node}, refused on {string.Join(", ", e.Value)}")
            .ToList();
        return new ClusterView(remote, refused);
    }

    private readonly record struct Claim(int Rank, Address Node, IReadOnlyList<string> Groups, bool IsLocal)
    {
        public bool IsOlderThan(Claim other) =>
            Rank != other.Rank ? Rank < other.Rank : Member.AddressOrdering.Compare(Node, other.Node) < 0;
    }
}
