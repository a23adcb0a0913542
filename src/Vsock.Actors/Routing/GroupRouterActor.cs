using Akka.Actor;
using Akka.Event;
using Vsock.Device.Connections;
using Vsock.Device.Packets;
using static Vsock.Actors.Routing.ClusterRegistryProtocol;
using static Vsock.Actors.Routing.GroupRouterProtocol;

namespace Vsock.Actors.Routing;

/// <summary>
/// The registry of CID → device and its groups for every VM of this process, and the post office
/// between sibling VMs: a <see cref="SiblingPacket"/> reaches the destination CID's device only if the
/// two devices share a group. A plain actor with a dictionary and DeathWatch (not an Akka group
/// router: routing by CID is content-based, and a dead device must disappear from the table at
/// once). It replaces the reference's process-wide <c>Arc&lt;RwLock&lt;CidMap&gt;&gt;</c>, so devices
/// share no lock.
///
/// On a cluster node it also starts the <see cref="ClusterRegistryActor"/> and keeps the latest
/// <see cref="ClusterView"/> it sends: a CID this process does not serve is looked up there (a dictionary read, no
/// round trip), and a REQUEST to it is passed to that node's router, which checks it again and hands it to its device
/// with the sender kept; from then on the two devices send to each other directly, as local siblings do. The local
/// path does not change: local CIDs are found first, and without a cluster the view stays empty.
/// </summary>
public sealed class GroupRouterActor : UntypedActor
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<ulong, Entry> _byCid = new();
    private readonly bool _clustered;
    private IActorRef? _registry;
    private ClusterView _view = ClusterView.Empty;

    private sealed record Entry(IActorRef Device, IReadOnlyList<string> Groups);

    public GroupRouterActor(bool clustered) => _clustered = clustered;

    /// <param name="clustered">This process is a cluster node: start the cluster-wide registry.</param>
    public static Props Props(bool clustered = false) => Akka.Actor.Props.Create(() => new GroupRouterActor(clustered));

    protected override void PreStart()
    {
        if (_clustered)
            _registry = Context.ActorOf(ClusterRegistryActor.Props(), "cluster");
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case SiblingPacket packet:
                Route(packet);
                break;
            case Register register:
                OnRegister(register);
                break;
            case SiblingGuestReset reset:
                OnGuestReset(reset);
                break;
            case Terminated terminated:
                foreach (var (cid, _) in _byCid.Where(e => e.Value.Device.Equals(terminated.ActorRef)).ToList())
                {
                    _byCid.Remove(cid);
                    _log.Debug("guest CID {0} unregistered", cid);
                    if (!_view.RefusedLocal.ContainsKey(cid))
                        ResetEverywhere(new SiblingGuestReset(cid));
                }
                TellRegistry();
                break;
            case ClusterView view:
                OnClusterView(view);
                break;
            case RequestLocalVms:
                TellRegistry();
                break;
            case GetRegistrations:
                Sender.Tell(new Registrations(_byCid.ToDictionary(e => e.Key, e => e.Value.Groups)));
                break;
            case GetClusterView:
                Sender.Tell(_view);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void Route(SiblingPacket packet)
    {
        var h = packet.Header;
        string? refusal;
        if (_byCid.TryGetValue(h.SrcCid, out var from) && from.Device.Equals(Sender))
            refusal = RouteFromLocal(packet, from);
        else if (_view.Remote.TryGetValue(h.SrcCid, out var remote) && remote.Node.Equals(Sender.Path.Address))
            refusal = RouteFromNode(packet, remote);
        else
            refusal = $"sender is not the device of CID {h.SrcCid}";
        if (refusal is null)
            return;
        if (packet.Data is not null)
            PayloadPool.Return(packet.Data);
        if (h.Op != VsockOp.Rst)
            Sender.Tell(new SiblingUnreachable(h, refusal));
    }

    /// <summary>A packet from one of our devices: to a local sibling, else to the node that serves the CID.</summary>
    private string? RouteFromLocal(SiblingPacket packet, Entry from)
    {
        var h = packet.Header;
        if (_view.RefusedLocal.TryGetValue(h.SrcCid, out var refused))
            return $"guest CID {h.SrcCid} is refused in the cluster: {refused}";
        if (_byCid.TryGetValue(h.DstCid, out var to) && !_view.RefusedLocal.ContainsKey(h.DstCid))
        {
            if (!SharesGroup(from.Groups, to.Groups))
                return $"CID {h.SrcCid} and CID {h.DstCid} share no group";
            to.Device.Tell(packet, Sender);
            return null;
        }
        if (_view.Remote.TryGetValue(h.DstCid, out var remote))
        {
            if (!SharesGroup(from.Groups, remote.Groups))
                return $"CID {h.SrcCid} and CID {h.DstCid} (on {remote.Node}) share no group";
            remote.Router.Tell(packet, Sender);
            return null;
        }
        return _clustered ? $"no VM with CID {h.DstCid} in the cluster" : $"no VM with CID {h.DstCid} in this process";
    }

    /// <summary>A packet another node's router passed on, from a device of that node: checked again against our view.</summary>
    private string? RouteFromNode(SiblingPacket packet, RemoteVm from)
    {
        var h = packet.Header;
        if (!_byCid.TryGetValue(h.DstCid, out var to) || _view.RefusedLocal.ContainsKey(h.DstCid))
            return $"no VM with CID {h.DstCid} on {Self.Path.Address} any more";
        if (!SharesGroup(from.Groups, to.Groups))
            return $"CID {h.SrcCid} and CID {h.DstCid} share no group";
        to.Device.Tell(packet, Sender);
        return null;
    }

    private static bool SharesGroup(IReadOnlyList<string> a, IReadOnlyList<string> b)
    {
        foreach (var group in a)
        {
            foreach (var other in b)
            {
                if (string.Equals(group, other, StringComparison.Ordinal))
                    return true;
            }
        }
        return false;
    }

    /// <summary>A guest lost its state: from one of our devices (tell everyone), or from the node that serves the CID.</summary>
    private void OnGuestReset(SiblingGuestReset reset)
    {
        if (_byCid.TryGetValue(reset.Cid, out var entry) && entry.Device.Equals(Sender))
        {
            if (!_view.RefusedLocal.ContainsKey(reset.Cid)) // a refused VM has no siblings; streams with this CID are the other VM's
                ResetEverywhere(reset);
        }
        else if (_view.Remote.TryGetValue(reset.Cid, out var remote) && remote.Node.Equals(Sender.Path.Address))
        {
            Broadcast(reset, except: reset.Cid);
        }
    }

    /// <summary>Our VM's streams are over: our other devices, and every node that serves VMs, are told.</summary>
    private void ResetEverywhere(SiblingGuestReset reset)
    {
        Broadcast(reset, except: reset.Cid);
        foreach (var router in _view.Remote.Values.Select(r => r.Router).Distinct())
            router.Tell(reset, Self);
    }

    private void Broadcast(object message, ulong except)
    {
        foreach (var (cid, entry) in _byCid)
        {
            if (cid != except)
                entry.Device.Tell(message, Self);
        }
    }

    private void OnRegister(Register register)
    {
        if (_byCid.TryGetValue(register.Cid, out var existing) && !existing.Device.Equals(Sender))
        {
            Sender.Tell(new RegistrationRejected(register.Cid, $"CID {register.Cid} is already in use by another vsock device"));
            return;
        }
        _byCid[register.Cid] = new Entry(Sender, register.Groups);
        Context.Watch(Sender);
        Sender.Tell(new Registered(register.Cid));
        _log.Debug("guest CID {0} registered in groups {1}", register.Cid, string.Join('+', register.Groups));
        TellRegistry();
    }

    private void TellRegistry() =>
        _registry?.Tell(new LocalVms(_byCid.ToDictionary(e => e.Key, e => e.Value.Groups)));

    /// <summary>
    /// The cluster's answer changed. Streams whose peer CID moved away (its node left, became unreachable or
    /// disconnected, or the CID now belongs to another VM) are reset on our devices; a VM of ours that the cluster
    /// refuses loses every sibling stream.
    /// </summary>
    private void OnClusterView(ClusterView view)
    {
        var old = _view;
        _view = view;
        foreach (var (cid, was) in old.Remote)
        {
            if (view.Remote.TryGetValue(cid, out var now) && now.Node.Equals(was.Node))
                continue;
            _log.Info("sibling CID {0} on {1} is gone (its node left, is unreachable, or the CID moved); resetting its streams", cid, was.Node);
            Broadcast(new SiblingGuestReset(cid), except: cid);
        }
        foreach (var (cid, now) in view.Remote)
        {
            if (!old.Remote.TryGetValue(cid, out var was) || !was.Node.Equals(now.Node))
                _log.Info("sibling CID {0} on {1} is reachable (groups {2})", cid, now.Node, string.Join('+', now.Groups));
        }
        foreach (var (cid, reason) in view.RefusedLocal)
        {
            if (old.RefusedLocal.ContainsKey(cid) || !_byCid.TryGetValue(cid, out var entry))
                continue;
            _log.Error("guest CID {0} is refused in the cluster: {1}. Its sibling streams are reset and no sibling reaches it " +
                "(its host side keeps working); give it a CID no other node uses", cid, reason);
            // Every stream of the refused VM ends (each peer CID it may have one with), and so does every local stream with it.
            foreach (var peer in _byCid.Keys.Concat(old.Remote.Keys).Concat(view.Remote.Keys).Distinct().Where(c => c != cid))
                entry.Device.Tell(new SiblingGuestReset(peer), Self);
            Broadcast(new SiblingGuestReset(cid), except: cid);
        }
        foreach (var cid in old.RefusedLocal.Keys.Where(c => !view.RefusedLocal.ContainsKey(c) && _byCid.ContainsKey(c)))
            _log.Warning("guest CID {0} is no longer refused in the cluster (the VM that had the CID is gone): siblings reach it now", cid);
    }
}
