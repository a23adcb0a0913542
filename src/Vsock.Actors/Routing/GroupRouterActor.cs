using Akka.Actor;
using Akka.Event;
using Vsock.Device.Connections;
using Vsock.Device.Packets;
using static Vsock.Actors.Routing.GroupRouterProtocol;

namespace Vsock.Actors.Routing;

/// <summary>
/// The registry of CID → device and its groups for every VM of this process, and the post office
/// between sibling VMs: a <see cref="SiblingPacket"/> reaches the destination CID's device only if the
/// two devices share a group. A plain actor with a dictionary and DeathWatch (not an Akka group
/// router: routing by CID is content-based, and a dead device must disappear from the table at
/// once). It replaces the reference's process-wide <c>Arc&lt;RwLock&lt;CidMap&gt;&gt;</c>, so devices
/// share no lock.
/// </summary>
public sealed class GroupRouterActor : UntypedActor
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<ulong, Entry> _byCid = new();

    private sealed record Entry(IActorRef Device, IReadOnlyList<string> Groups);

    public static Props Props() => Akka.Actor.Props.Create(() => new GroupRouterActor());

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
                Broadcast(reset, except: reset.Cid);
                break;
            case Terminated terminated:
                foreach (var (cid, _) in _byCid.Where(e => e.Value.Device.Equals(terminated.ActorRef)).ToList())
                {
                    _byCid.Remove(cid);
                    _log.Debug("guest CID {0} unregistered", cid);
                    Broadcast(new SiblingGuestReset(cid), except: cid);
                }
                break;
            case GetRegistrations:
                Sender.Tell(new Registrations(_byCid.ToDictionary(e => e.Key, e => e.Value.Groups)));
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void Route(SiblingPacket packet)
    {
        var h = packet.Header;
        string? refusal = null;
        if (!_byCid.TryGetValue(h.SrcCid, out var from) || !from.Device.Equals(Sender))
            refusal = $"sender is not the device of CID {h.SrcCid}";
        else if (!_byCid.TryGetValue(h.DstCid, out var to))
            refusal = $"no VM with CID {h.DstCid} in this process";
        else if (!from.Groups.Intersect(to.Groups, StringComparer.Ordinal).Any())
            refusal = $"CID {h.SrcCid} and CID {h.DstCid} share no group";
        else
        {
            to.Device.Tell(packet, Sender);
            return;
        }
        if (packet.Data is not null)
            PayloadPool.Return(packet.Data);
        if (h.Op != VsockOp.Rst)
            Sender.Tell(new SiblingUnreachable(h, refusal));
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
    }
}
