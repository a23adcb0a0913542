using Akka.Event;
using System.Buffers;
using Akka.Actor;
using Vsock.Actors.Connections;
using Vsock.Device.Connections;
using Vsock.Device.Packets;
using static Vsock.Actors.Protocol.DeviceProtocol;

namespace Vsock.Actors.Device;

/// <summary>The connection table: which actor serves which stream, and the RSTs the device answers itself.</summary>
public sealed partial class DeviceActor
{
    private readonly Dictionary<ConnectionKey, IActorRef> _connections = new();
    private readonly Dictionary<IActorRef, ConnectionKey> _keysByActor = new();
    /// <summary>Host-side ports handed to host-initiated streams are allocated from here upward.</summary>
    private const uint FirstHostPort = 1024;
    private uint _nextHostPort = FirstHostPort;

    /// <summary>
    /// Routes one TX packet (still in guest memory) to its stream. Runs inside the backend's drain:
    /// it copies what it keeps and must not throw for anything the guest can send.
    /// </summary>
    private void OnGuestPacket(ref VsockPacket packet)
    {
        var h = packet.Header;
        if (h.SrcCid != _settings.GuestCid)
        {
            // Anti-spoofing, as the reference: a guest may only speak for its own CID.
            _log.Warning("dropping packet with src_cid {0} from the guest with CID {1}: {2}", h.SrcCid, _settings.GuestCid, h);
            return;
        }
        if (h.Type != VsockType.Stream)
        {
            // The spec says both sides MUST reset a packet of an unknown type (the reference drops it silently).
            _log.Debug("resetting packet of unsupported type {0}: {1}", h.Type, h);
            ReplyRst(h);
            return;
        }
        var key = new ConnectionKey(h.DstCid, h.DstPort, h.SrcPort);
        if (!_connections.TryGetValue(key, out var connection) && h.DstCid != VsockConstants.HostCid)
        {
            OnGuestToSibling(ref packet, h);
            return;
        }
        if (connection is not null)
        {
            byte[]? data = null;
            if (h.Op == VsockOp.Rw && h.Len > 0)
            {
                data = ArrayPool<byte>.Shared.Rent((int)h.Len);
                packet.CopyDataTo(data.AsSpan(0, (int)h.Len));
            }
            connection.Tell(FromGuest.Rent(h, data), Self);
            if (h.Op == VsockOp.Rst)
                ForgetKey(key);
            return;
        }
        switch (h.Op)
        {
            case VsockOp.Request:
                OnGuestRequest(key, h);
                break;
            case VsockOp.Rst:
                break; // never answer an RST with an RST
            default:
                // A packet for a stream we do not know: tell the guest at once (the reference stays silent).
                _log.Debug("resetting packet for unknown stream {0}: {1}", key, h);
                ReplyRst(h);
                break;
        }
    }

    /// <summary>
    /// A guest REQUEST for a host-side stream: to CID 2, or (AF_VSOCK backend) to any CID that is not a
    /// sibling, which is forwarded to <c>forward-cid</c> as the reference does "regardless of the target CID".
    /// </summary>
    private void OnGuestRequest(ConnectionKey key, in VsockHeader request)
    {
        var endpoint = HostEndpoint.ForGuestPort(_connectionOptions, request.DstPort);
        var actor = StartConnection(ConnectionActor.ForGuestRequest(Self, _connectionOptions, key, request, endpoint));
        Track(key, actor);
    }

    private void OnOpenToGuest(OpenToGuest open)
    {
        if (_backend is not { IsRunning: true })
        {
            Sender.Tell(new OpenRefused("the guest driver is not running"));
            return;
        }
        if (!TryAllocateHostPort(open.GuestPort, out var key))
        {
            Sender.Tell(new OpenRefused("no free host-side port"));
            return;
        }
        Track(key, Sender);
        Sender.Tell(new OpenedToGuest(key));
    }

    /// <summary>A host-side port such that (2, port, guest port) names no live stream.</summary>
    private bool TryAllocateHostPort(uint guestPort, out ConnectionKey key)
    {
        for (var attempt = 0u; attempt < uint.MaxValue - FirstHostPort; attempt++)
        {
            var port = _nextHostPort;
            _nextHostPort = _nextHostPort == uint.MaxValue - 1 ? FirstHostPort : _nextHostPort + 1;
            key = new ConnectionKey(VsockConstants.HostCid, port, guestPort);
            if (!_connections.ContainsKey(key))
                return true;
            if (attempt > (uint)_connections.Count)
                break;
        }
        key = default;
        return false;
    }

    private void Track(ConnectionKey key, IActorRef actor)
    {
        _connections[key] = actor;
        _keysByActor[actor] = key;
    }

    private void ForgetKey(ConnectionKey key)
    {
        if (_connections.Remove(key, out var actor))
            _keysByActor.Remove(actor);
    }

    /// <summary>
    /// Frees the key of <paramref name="actor"/>'s stream: after its final RST (then no RST is owed when
    /// the actor stops), or when it stopped. False if it held none.
    /// </summary>
    private bool ForgetConnection(IActorRef actor, out ConnectionKey key)
    {
        if (!_keysByActor.Remove(actor, out key))
            return false;
        _connections.Remove(key);
        return true;
    }

    /// <summary>
    /// A connection actor stopped. If it still held a stream (it failed rather than finishing), the
    /// guest is owed an RST so its socket does not hang.
    /// </summary>
    private void OnConnectionTerminated(IActorRef actor)
    {
        if (!ForgetConnection(actor, out var key))
            return;
        _log.Warning("connection {0} ended without closing its stream; resetting it", key);
        ResetGuestStream(key);
    }

    private void DropAllConnections(string reason)
    {
        if (_keysByActor.Count > 0)
            _log.Info("dropping {0} connection(s): {1}", _keysByActor.Count, reason);
        foreach (var child in Context.GetChildren())
        {
            Context.Unwatch(child);
            Context.Stop(child);
        }
        _connections.Clear();
        _keysByActor.Clear();
    }

    /// <summary>RST in answer to <paramref name="packet"/> (a packet our guest sent): the addresses swapped.</summary>
    private void ReplyRst(in VsockHeader packet) =>
        EnqueueControl(Rst(packet.DstCid, packet.DstPort, packet.SrcCid, packet.SrcPort, packet.Type));

    /// <summary>RST to our guest for the stream <paramref name="key"/>, from its peer end.</summary>
    private void ResetGuestStream(ConnectionKey key) =>
        EnqueueControl(Rst(key.LocalCid, key.LocalPort, _settings.GuestCid, key.GuestPort));

    /// <summary>An RST from (srcCid, srcPort) to (dstCid, dstPort); it carries no credit.</summary>
    private static VsockHeader Rst(ulong srcCid, uint srcPort, ulong dstCid, uint dstPort, ushort type = VsockType.Stream) => new()
    {
        SrcCid = srcCid,
        DstCid = dstCid,
        SrcPort = srcPort,
        DstPort = dstPort,
        Type = type,
        Op = VsockOp.Rst,
    };
}
