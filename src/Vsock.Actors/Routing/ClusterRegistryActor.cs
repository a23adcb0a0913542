using Akka.Actor;
using Akka.Cluster;
using Akka.DistributedData;
using Akka.Event;
using Akka.Remote;
using static Vsock.Actors.Routing.ClusterRegistryProtocol;

namespace Vsock.Actors.Routing;

/// <summary>
/// The cluster-wide registry of CID → node and groups, one per node, a child of the node's
/// <see cref="GroupRouterActor"/>. It is a Distributed Data map (<see cref="Key"/>) from each node's incarnation to
/// what that node serves (<see cref="NodeVms"/>); a node only ever writes its own entry, so there are no concurrent
/// writers to reconcile, and every node holds a full replica: the router answers from memory, never with a round
/// trip. What is live comes from the cluster itself: member events, the failure detector's reachability, and — sooner
/// than the failure detector — Akka.Remote's association events (a closed TCP connection is seen at once, and
/// after one, messages in flight may have been dropped, so the streams over it are over either way).
///
/// Whenever the answer changes it sends its parent a new <see cref="ClusterView"/> (built by
/// <see cref="ClusterViewBuilder"/>). Duplicate CIDs are resolved there: the oldest node keeps the CID. During a
/// network partition each side sees the other's VMs as gone (their streams are reset, new connections refused) and
/// may accept a duplicate CID on its side; when the partition heals the replicas merge and the younger claim is
/// refused, with its streams reset.
/// </summary>
public sealed class ClusterRegistryActor : UntypedActor, IWithTimers
{
    /// <summary>The replicated map: node incarnation (<see cref="NodeVms.Key"/>) → that node's VMs.</summary>
    public static readonly LWWDictionaryKey<string, NodeVms> Key = new("vsock-sibling-vms");

    /// <summary>
    /// How long a node whose association dropped stays out of the view after it is associated again. Long enough
    /// for a restarted node's join to down its old incarnation (whose entry must not come back meanwhile), short
    /// enough that a connection that merely blipped heals quickly.
    /// </summary>
    public static readonly TimeSpan ReassociationGrace = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The longest a lost association keeps a node out of the view by itself: by then the failure detector has long
    /// decided (3-6 s) whether the node is gone, and an association error that did not end a working connection (a
    /// duplicate association dropped, say) cannot hide a live node for longer than this.
    /// </summary>
    public static readonly TimeSpan DisconnectHold = TimeSpan.FromSeconds(15);

    private static readonly TimeSpan WriteTimeout = TimeSpan.FromSeconds(2);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Cluster _cluster = Cluster.Get(Context.System);
    private readonly IActorRef _replicator = DistributedData.Get(Context.System).Replicator;
    private readonly Dictionary<UniqueAddress, Member> _members = new();
    private readonly HashSet<UniqueAddress> _unreachable = new();
    private readonly HashSet<UniqueAddress> _removed = new();
    private readonly Dictionary<Address, int> _disconnected = new();
    private readonly Dictionary<Address, IActorRef> _routers = new();
    private readonly HashSet<string> _loggedConflicts = new(StringComparer.Ordinal);
    private IReadOnlyDictionary<ulong, IReadOnlyList<string>> _local = new Dictionary<ulong, IReadOnlyList<string>>();
    private LWWDictionary<string, NodeVms> _claims = LWWDictionary<string, NodeVms>.Empty;
    private ClusterView _published = ClusterView.Empty;
    private int _generation;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props() => Akka.Actor.Props.Create(() => new ClusterRegistryActor());

    /// <summary>Timer: a disconnected node has been associated again for <see cref="ReassociationGrace"/>, or <see cref="DisconnectHold"/> is over.</summary>
    private sealed record Reconnected(Address Node, int Generation, bool Reassociated);

    protected override void PreStart()
    {
        _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot,
            typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));
        Context.System.EventStream.Subscribe(Self, typeof(DisassociatedEvent));
        Context.System.EventStream.Subscribe(Self, typeof(AssociationErrorEvent));
        Context.System.EventStream.Subscribe(Self, typeof(AssociatedEvent));
        _replicator.Tell(Dsl.Subscribe(Key, Self));
        Context.Parent.Tell(RequestLocalVms.Instance);
    }

    protected override void PostStop()
    {
        _cluster.Unsubscribe(Self);
        Context.System.EventStream.Unsubscribe(Self);
        _replicator.Tell(Dsl.Unsubscribe(Key, Self));
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case LocalVms local:
                _local = local.GroupsByCid;
                WriteOwnEntry();
                break;
            case Changed changed when changed.Key.Equals(Key):
                _claims = changed.Get(Key);
                PruneStaleEntries();
                break;
            case ClusterEvent.CurrentClusterState state:
                _members.Clear();
                _unreachable.Clear();
                foreach (var member in state.Members)
                    _members[member.UniqueAddress] = member;
                foreach (var member in state.Unreachable)
                    _unreachable.Add(member.UniqueAddress);
                break;
            case ClusterEvent.MemberRemoved removed:
                _members.Remove(removed.Member.UniqueAddress);
                _unreachable.Remove(removed.Member.UniqueAddress);
                _removed.Add(removed.Member.UniqueAddress);
                _log.Info("cluster: node {0} left the cluster", removed.Member.Address);
                PruneStaleEntries();
                break;
            case ClusterEvent.IMemberEvent changed:
                _members[changed.Member.UniqueAddress] = changed.Member;
                if (changed.Member.UniqueAddress.Equals(_cluster.SelfUniqueAddress) && changed is ClusterEvent.MemberUp or ClusterEvent.MemberWeaklyUp)
                    WriteOwnEntry(); // straight to every replica now that there are some
                break;
            case ClusterEvent.UnreachableMember unreachable:
                _unreachable.Add(unreachable.Member.UniqueAddress);
                _log.Warning("cluster: node {0} is unreachable (failure detector): its VMs are unreachable until it is back", unreachable.Member.Address);
                break;
            case ClusterEvent.ReachableMember reachable:
                _unreachable.Remove(reachable.Member.UniqueAddress);
                _log.Info("cluster: node {0} is reachable again", reachable.Member.Address);
                break;
            case DisassociatedEvent lost:
                Disconnected(lost.RemoteAddress, "connection closed");
                break;
            case AssociationErrorEvent error:
                Disconnected(error.RemoteAddress, $"association failed: {error.Cause?.Message}");
                break;
            case AssociatedEvent associated:
                if (_disconnected.TryGetValue(associated.RemoteAddress, out var generation))
                    Timers.StartSingleTimer(associated.RemoteAddress, new Reconnected(associated.RemoteAddress, generation, Reassociated: true), ReassociationGrace);
                return;
            case Reconnected reconnected:
                if (_disconnected.TryGetValue(reconnected.Node, out var current) && current == reconnected.Generation)
                {
                    _disconnected.Remove(reconnected.Node);
                    if (reconnected.Reassociated)
                        _log.Info("cluster: node {0} is connected again", reconnected.Node);
                    else
                        _log.Info("cluster: node {0} lost its connection {1} ago; the failure detector decides from now on", reconnected.Node, DisconnectHold);
                }
                break;
            case UpdateSuccess or UpdateTimeout or ModifyFailure or StoreFailure:
                // A write that did not reach every replica is still applied here and gossiped later.
                return;
            default:
                Unhandled(message);
                return;
        }
        Publish();
    }

    private void Disconnected(Address node, string reason)
    {
        if (!_members.Keys.Any(m => m.Address.Equals(node)))
            return; // not a member (yet): a seed being probed, a node still joining
        var known = _disconnected.ContainsKey(node);
        _disconnected[node] = ++_generation;
        Timers.StartSingleTimer(node, new Reconnected(node, _generation, Reassociated: false), DisconnectHold);
        if (!known)
            _log.Warning("cluster: connection to node {0} lost ({1}): its VMs are unreachable until it is back", node, reason);
    }

    private void WriteOwnEntry()
    {
        var self = _cluster.SelfUniqueAddress;
        var entry = new NodeVms(self.Address.ToString(), self.Uid,
            _local.OrderBy(e => e.Key).Select(e => new NodeVm(e.Key, e.Value)).ToList());
        _replicator.Tell(Dsl.Update(Key, LWWDictionary<string, NodeVms>.Empty, new WriteAll(WriteTimeout),
            map => map.TryGetValue(entry.Key, out var old) && old.Equals(entry) ? map : map.SetItem(_cluster, entry.Key, entry)));
    }

    /// <summary>
    /// Entries of incarnations that are gone for good: removed members, and old incarnations of an address that has a
    /// newer member. The oldest live node removes them (one writer is enough; the entries are ignored meanwhile).
    /// </summary>
    private void PruneStaleEntries()
    {
        var live = LiveMembers().ToList();
        if (live.Count == 0 || !live.OrderBy(m => m, Member.AgeOrdering).First().UniqueAddress.Equals(_cluster.SelfUniqueAddress))
            return;
        var stale = new List<string>();
        foreach (var (key, vms) in _claims.Entries)
        {
            var node = NodeOf(vms);
            if (node is null || _members.ContainsKey(node))
                continue;
            // Not a member: stale if it was removed, or if a newer incarnation holds its address. Otherwise it may be a
            // node whose entry arrived before its Joining event: it is ignored until it is live, not removed.
            if (_removed.Contains(node) || _members.Keys.Any(m => m.Address.Equals(node.Address)))
                stale.Add(key);
        }
        _removed.IntersectWith(_claims.Entries.Values.Select(NodeOf).OfType<UniqueAddress>());
        if (stale.Count == 0)
            return;
        _replicator.Tell(Dsl.Update(Key, LWWDictionary<string, NodeVms>.Empty, WriteLocal.Instance,
            map => stale.Aggregate(map, (m, key) => m.ContainsKey(key) ? m.Remove(_cluster, key) : m)));
    }

    private void Publish()
    {
        var ranked = LiveMembers().OrderBy(m => m, Member.AgeOrdering).Select((m, i) => (m.UniqueAddress, Rank: i)).ToList();
        var self = _cluster.SelfUniqueAddress;
        var selfRank = ranked.Where(r => r.UniqueAddress.Equals(self)).Select(r => r.Rank).DefaultIfEmpty(int.MaxValue).First();
        var liveRanks = ranked.Where(r => !r.UniqueAddress.Equals(self) && !_disconnected.ContainsKey(r.UniqueAddress.Address))
            .ToDictionary(r => r.UniqueAddress, r => r.Rank);
        var claims = _claims.Entries.Values
            .Select(vms => (Node: NodeOf(vms), Vms: vms))
            .Where(c => c.Node is not null)
            .Select(c => (c.Node!, c.Vms));
        var view = ClusterViewBuilder.Build(self, selfRank, liveRanks, claims, _local, RouterOf, out var conflicts);
        foreach (var conflict in conflicts)
        {
            if (_loggedConflicts.Add(conflict))
                _log.Error("cluster: {0}", conflict);
        }
        _loggedConflicts.IntersectWith(conflicts);
        if (view.Equals(_published))
            return;
        _published = view;
        Context.Parent.Tell(view);
    }

    /// <summary>Members that serve traffic: Up, WeaklyUp or Leaving, and reachable.</summary>
    private IEnumerable<Member> LiveMembers() => _members.Values.Where(m =>
        (m.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Leaving) && !_unreachable.Contains(m.UniqueAddress));

    private static UniqueAddress? NodeOf(NodeVms vms) =>
        ActorPath.TryParseAddress(vms.Address, out var address) ? new UniqueAddress(address, vms.Uid) : null;

    /// <summary>The router at the same path on <paramref name="node"/>: resolved locally, no round trip (Akka.Remote connects on first use).</summary>
    private IActorRef RouterOf(Address node)
    {
        if (!_routers.TryGetValue(node, out var router))
        {
            var path = new RootActorPath(node) / Context.Parent.Path.Elements;
            _routers[node] = router = ((ExtendedActorSystem)Context.System).Provider.ResolveActorRef(path);
        }
        return router;
    }
}
