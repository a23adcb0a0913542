using Vsock.Device.Backend;
using Vsock.Device.Connections;
using Vsock.Device.Diagnostics;
using Vsock.Device.Packets;

namespace Vsock.Actors.Device;

/// <summary>
/// Where each packet the guest sends goes (the reference's <c>VsockThreadBackend::send_pkt</c>): to its stream, to a
/// new stream (a REQUEST), or back as an RST. Runs inside the device's TX turn with the packet still in guest memory;
/// must not throw for anything a guest can send.
///
/// Types: STREAM always; SEQPACKET once the driver negotiated VIRTIO_VSOCK_F_SEQPACKET
/// (<paramref name="seqpacketNegotiated"/>); anything else is reset. A packet whose type is not its stream's type is
/// reset and the stream left alone, as Linux does (virtio_transport_recv_pkt: the socket's type must match).
/// </summary>
internal sealed class GuestPacketRouter(
    ulong guestCid,
    StreamTable table,
    RxScheduler scheduler,
    DeviceLog log,
    Func<bool> seqpacketNegotiated,
    GuestPacketRouter.Opener openHostStream,
    GuestPacketRouter.Opener openSiblingStream)
{
    /// <summary>Opens a stream for a guest REQUEST on <paramref name="key"/>.</summary>
    public delegate void Opener(ConnectionKey key, in VsockHeader request);

    public void Route(ref VsockPacket packet, ref TxTurn turn)
    {
        var h = packet.Header;
        if (h.SrcCid != guestCid)
        {
            // Anti-spoofing, as the reference: a guest may only speak for its own CID (no RST: it would let a guest
            // probe other streams).
            if (log.Allow(LogTopic.SpoofedCid))
                log.Warning($"dropping packet with src_cid {h.SrcCid} from the guest with CID {guestCid}: {h}");
            return;
        }
        if (h.Type != VsockType.Stream && (h.Type != VsockType.SeqPacket || !seqpacketNegotiated()))
        {
            // The spec says both sides MUST reset a packet of an unknown type (the reference drops it silently).
            if (h.Op != VsockOp.Rst)
                ReplyRst(h);
            return;
        }
        var key = ConnectionKey.FromGuestPacket(h.DstCid, h.DstPort, h.SrcPort);
        if (table.TryGet(key, out var stream))
        {
            if (stream.Type == h.Type)
                stream.OnGuestPacket(ref packet, ref turn);
            else if (h.Op != VsockOp.Rst)
                ReplyRst(h);
            return;
        }
        switch (h.Op)
        {
            case VsockOp.Request when h.DstCid == VsockConstants.HostCid:
                openHostStream(key, h);
                break;
            case VsockOp.Request:
                openSiblingStream(key, h);
                break;
            case VsockOp.Rst:
                break; // never answer an RST with an RST
            default:
                // A packet for a stream we do not know: tell the guest at once (the reference stays silent).
                log.Debug($"resetting packet for unknown stream {key}: {h}");
                ReplyRst(h);
                break;
        }
    }

    /// <summary>RST in answer to <paramref name="packet"/> (a packet our guest sent): the addresses swapped.</summary>
    public void ReplyRst(in VsockHeader packet) => scheduler.Reply(new VsockHeader
    {
        SrcCid = packet.DstCid,
        DstCid = packet.SrcCid,
        SrcPort = packet.DstPort,
        DstPort = packet.SrcPort,
        Type = packet.Type,
        Op = VsockOp.Rst,
    });

    /// <summary>RST to our guest for the stream <paramref name="key"/>, from its peer end.</summary>
    public void ResetGuestStream(ConnectionKey key, ushort type = VsockType.Stream) => scheduler.Reply(new VsockHeader
    {
        SrcCid = key.PeerCid,
        DstCid = guestCid,
        SrcPort = key.PeerPort,
        DstPort = key.GuestPort,
        Type = type,
        Op = VsockOp.Rst,
    });
}
