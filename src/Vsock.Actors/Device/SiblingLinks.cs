using Akka.Actor;
using Vsock.Device.Connections;
using Vsock.Device.Diagnostics;
using Vsock.Device.Packets;
using static Vsock.Actors.Routing.GroupRouterProtocol;

namespace Vsock.Actors.Device;

/// <summary>
/// A device's side of its sibling streams: opens them (our guest's REQUEST goes to the group router, which checks
/// the groups), remembers which device serves the other end of each once it has answered, sends our guest's packets
/// there directly (<see cref="ISiblingLink"/>), and takes the siblings' packets for our guest. The streams themselves
/// live in the <see cref="StreamTable"/> with the host streams: one table, one credit implementation.
/// </summary>
internal sealed class SiblingLinks(IActorRef self, IActorRef router, StreamTable table, RxScheduler scheduler, DeviceLog log, ConnectionLimit limit) : ISiblingLink
{
    private readonly Dictionary<ConnectionKey, IActorRef> _peers = new();

    /// <summary>Our guest sent a REQUEST to another CID: a new stream, the REQUEST to the router.</summary>
    public void Open(ConnectionKey key, in VsockHeader request)
    {
        var stream = new SiblingStream(scheduler, this, key, request.Type);
        table.Add(stream);
        router.Tell(new SiblingPacket(request, null), self);
    }

    void ISiblingLink.Send(SiblingStream stream, in VsockHeader header, byte[]? payload)
    {
        scheduler.Counters.SiblingPacketsSent++;
        var target = _peers.GetValueOrDefault(stream.Key) ?? router;
        target.Tell(new SiblingPacket(header, payload), self);
    }

    /// <summary>
    /// A sibling's packet for our guest (through the router for a new stream, directly after). SEQPACKET only reaches
    /// a guest whose driver negotiated it (<paramref name="seqpacket"/>); otherwise the sender's guest gets an RST.
    /// </summary>
    public void OnPacket(SiblingPacket message, IActorRef sender, bool driverRunning, bool seqpacket)
    {
        var h = message.Header;
        var key = new ConnectionKey(h.SrcCid, h.SrcPort, h.DstPort);
        scheduler.Counters.SiblingPacketsReceived++;
        if (h.DstCid != scheduler.GuestCid || !driverRunning || (h.Type == VsockType.SeqPacket && !seqpacket))
        {
            Refuse(message, sender, key);
            return;
        }
        if (!table.TryGet(key, out var found))
        {
            if (h.Op != VsockOp.Request)
            {
                // Our guest's end is gone (its driver restarted, say): tell the sender.
                Refuse(message, sender, key);
                return;
            }
            if (!limit.Admit(ConnectionLimit.Origin.SiblingRequest, key))
            {
                Refuse(message, sender, key);
                return;
            }
            found = new SiblingStream(scheduler, this, key, h.Type);
            table.Add(found);
        }
        if (found is not SiblingStream stream)
        {
            Refuse(message, sender, key); // a host stream has this key (the AF_VSOCK backend forwards any CID)
            return;
        }
        if (_peers.TryGetValue(key, out var peer) && !peer.Equals(sender))
        {
            log.Warning(LogTopic.StreamProtocol, $"{key}: packet from {sender.Path}, not the device serving that stream; dropped");
            Return(message.Data);
            return;
        }
        _peers[key] = sender;
        stream.OnPeerPacket(h, message.Data);
    }

    /// <summary>The router could not deliver our guest's packet (no such CID, no group in common).</summary>
    public SiblingStream? OnUnreachable(SiblingUnreachable unreachable)
    {
        var h = unreachable.Header;
        var key = ConnectionKey.FromGuestPacket(h.DstCid, h.DstPort, h.SrcPort);
        return table.TryGet(key, out var stream) ? stream as SiblingStream : null;
    }

    /// <summary>The guest of <paramref name="cid"/> lost its state: our guest's streams with it are over.</summary>
    public void OnGuestReset(ulong cid)
    {
        foreach (var stream in table.SiblingsOf(cid))
            stream.PeerGone();
    }

    /// <summary>Our guest lost its state: the siblings are told once (through the router), every stream is forgotten.</summary>
    public void ResetAll()
    {
        var any = _peers.Count > 0 || table.Siblings().Count > 0;
        _peers.Clear();
        if (any)
            router.Tell(new SiblingGuestReset(scheduler.GuestCid), self);
    }

    /// <summary>A sibling stream is over.</summary>
    public void Forget(ConnectionKey key) => _peers.Remove(key);

    /// <summary>No stream for this packet: drop it, and unless it is an RST, reset the sender's end.</summary>
    private void Refuse(SiblingPacket message, IActorRef sender, ConnectionKey key)
    {
        Return(message.Data);
        if (message.Header.Op == VsockOp.Rst)
            return;
        var rst = new VsockHeader
        {
            SrcCid = scheduler.GuestCid,
            DstCid = key.PeerCid,
            SrcPort = key.GuestPort,
            DstPort = key.PeerPort,
            Type = message.Header.Type,
            Op = VsockOp.Rst,
        };
        sender.Tell(new SiblingPacket(rst, null), self);
    }

    private static void Return(byte[]? payload)
    {
        if (payload is not null)
            PayloadPool.Return(payload);
    }
}
