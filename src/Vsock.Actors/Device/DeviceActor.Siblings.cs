using System.Buffers;
using Akka.Actor;
using Akka.Event;
using Vsock.Device.Connections;
using Vsock.Device.Packets;
using static Vsock.Actors.Routing.GroupRouterProtocol;

namespace Vsock.Actors.Device;

/// <summary>
/// Streams between this VM's guest and sibling VMs (same process, a group in common). Packets pass
/// through unchanged (the two guests run the stream protocol end to end, as with the reference), but
/// unlike the reference the device
/// <list type="bullet">
/// <item>answers an unreachable CID, a group mismatch or an unknown stream with an immediate RST;</item>
/// <item>enforces the receiving guest's credit on the sending guest (it sees both directions), so the
/// data queued for a guest is bounded by the buffer that guest advertised;</item>
/// <item>splits a payload larger than one RX buffer over several buffers instead of truncating it;</item>
/// <item>resets the streams of a sibling whose guest or device went away.</item>
/// </list>
/// </summary>
public sealed partial class DeviceActor
{
    private readonly Dictionary<ConnectionKey, SiblingStream> _siblingStreams = new();

    /// <summary>Credit the peer guest advertised, and what our guest has sent it (wrapping u32 counters).</summary>
    private sealed class SiblingStream
    {
        public uint PeerBufAlloc;
        public uint PeerFwdCnt;
        public uint TxCnt;
    }

    /// <summary>Our guest sent <paramref name="packet"/> to another CID: check it against the stream and post it to the router.</summary>
    private void OnGuestToSibling(ref VsockPacket packet, in VsockHeader h)
    {
        var key = new ConnectionKey(h.DstCid, h.DstPort, h.SrcPort);
        if (!TrackSiblingStream(key, h.Op, out var stream))
        {
            _log.Debug("resetting packet for unknown sibling stream {0}: {1}", key, h);
            ReplyRst(h);
            return;
        }
        if (h.Op == VsockOp.Rw && h.Len > 0)
        {
            var inFlight = unchecked(stream!.TxCnt + h.Len - stream.PeerFwdCnt);
            if (inFlight > stream.PeerBufAlloc)
            {
                _log.Warning("guest CID {0} sent {1} bytes beyond the credit of CID {2} on {3}; resetting the stream",
                    _settings.GuestCid, h.Len, h.DstCid, key);
                _siblingStreams.Remove(key);
                ReplyRst(h);
                SendRstToSibling(key);
                return;
            }
            stream.TxCnt = unchecked(stream.TxCnt + h.Len);
        }
        byte[]? data = null;
        if (h.Op == VsockOp.Rw && h.Len > 0)
        {
            data = ArrayPool<byte>.Shared.Rent((int)h.Len);
            packet.CopyDataTo(data.AsSpan(0, (int)h.Len));
        }
        _groupRouter.Tell(new SiblingPacket(h, data), Self);
    }

    /// <summary>
    /// Applies a packet's op to the stream table, for either direction: REQUEST opens (or reopens) the
    /// stream, RST closes it. False for any other op on a stream we do not know.
    /// </summary>
    private bool TrackSiblingStream(ConnectionKey key, ushort op, out SiblingStream? stream)
    {
        switch (op)
        {
            case VsockOp.Request:
                stream = new SiblingStream();
                _siblingStreams[key] = stream;
                return true;
            case VsockOp.Rst:
                _siblingStreams.Remove(key, out stream);
                return true;
            default:
                return _siblingStreams.TryGetValue(key, out stream);
        }
    }

    /// <summary>A sibling's packet for our guest (routed by the group router, which checked the groups).</summary>
    private void OnSiblingPacket(SiblingPacket message)
    {
        var h = message.Header;
        var key = new ConnectionKey(h.SrcCid, h.SrcPort, h.DstPort);
        if (h.DstCid != _settings.GuestCid || _backend is not { IsRunning: true })
        {
            Release(message);
            if (h.Op != VsockOp.Rst)
                SendRstToSibling(key);
            return;
        }
        if (!TrackSiblingStream(key, h.Op, out var stream))
        {
            // Our guest's side of this stream is gone (its VMM restarted, say): tell the sender.
            Release(message);
            SendRstToSibling(key);
            return;
        }
        if (stream is not null)
        {
            stream.PeerBufAlloc = h.BufAlloc;
            stream.PeerFwdCnt = h.FwdCnt;
        }
        _backend.Enqueue(new Vsock.Device.Backend.OutboundPacket
        {
            Header = h,
            Data = message.Data,
            Length = message.Data is null ? 0 : (int)h.Len,
        });
        ScheduleRx();
    }

    /// <summary>The router could not deliver our guest's packet: reset the guest's stream at once.</summary>
    private void OnSiblingUnreachable(SiblingUnreachable unreachable)
    {
        var h = unreachable.Header;
        var key = new ConnectionKey(h.DstCid, h.DstPort, h.SrcPort);
        _siblingStreams.Remove(key);
        if (h.Op == VsockOp.Request && _settings.ForwardCid is not null)
        {
            // Not a sibling: the AF_VSOCK backend forwards it to the host like a stream to CID 2.
            OnGuestRequest(key, h);
            return;
        }
        _log.Info("guest CID {0} cannot reach CID {1} port {2}: {3}", _settings.GuestCid, h.DstCid, h.DstPort, unreachable.Reason);
        ReplyRst(h);
    }

    /// <summary>A sibling's guest lost its state: its streams with our guest are over.</summary>
    private void OnSiblingGuestReset(ulong cid)
    {
        foreach (var key in _siblingStreams.Keys.Where(k => k.LocalCid == cid).ToList())
        {
            _siblingStreams.Remove(key);
            ResetGuestStream(key);
        }
    }

    /// <summary>Our guest lost its state: forget its sibling streams and tell the siblings.</summary>
    private void ResetSiblingStreams()
    {
        if (_siblingStreams.Count == 0)
            return;
        _siblingStreams.Clear();
        _groupRouter.Tell(new SiblingGuestReset(_settings.GuestCid), Self);
    }

    /// <summary>An RST to the sibling end of a stream, sent as our guest's end (src = our guest).</summary>
    private void SendRstToSibling(ConnectionKey key) =>
        _groupRouter.Tell(new SiblingPacket(Rst(_settings.GuestCid, key.GuestPort, key.LocalCid, key.LocalPort), null), Self);

    private static void Release(SiblingPacket message)
    {
        if (message.Data is not null)
            ArrayPool<byte>.Shared.Return(message.Data);
    }
}
