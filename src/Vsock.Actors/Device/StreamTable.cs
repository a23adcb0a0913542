using Akka.Actor;
using Vsock.Device.Connections;
using Vsock.Device.Diagnostics;
using Vsock.Device.Packets;

namespace Vsock.Actors.Device;

/// <summary>
/// One VM's streams: key → stream for every open stream (host and sibling alike), the connection actor that owns
/// each host stream, and the host-side ports handed to host-initiated streams. Owned by the
/// <see cref="DeviceActor"/> on the VM's loop thread.
/// </summary>
internal sealed class StreamTable(DeviceCounters counters)
{
    /// <summary>Host-side ports for host-initiated streams are allocated from here upward (the reference starts at 0).</summary>
    public const uint FirstHostPort = 1024;

    private readonly Dictionary<ConnectionKey, VsockStream> _byKey = new();
    private readonly Dictionary<IActorRef, HostStream> _byOwner = new();
    private readonly Dictionary<HostStream, IActorRef> _owners = new(ReferenceEqualityComparer.Instance);
    private uint _nextHostPort = FirstHostPort;
    private int _siblingCount;

    /// <summary>Open streams.</summary>
    public int Count => _byKey.Count;

    /// <summary>
    /// What counts against <c>max-connections</c>: every connection actor (a host stream, open or still being set
    /// up, holds a host socket until its actor stops) and every sibling stream (they have no actor).
    /// </summary>
    public int ConnectionCount => _byOwner.Count + _siblingCount;

    /// <summary>Connection actors alive (with or without an open stream).</summary>
    public int OwnerCount => _byOwner.Count;

    public IEnumerable<IActorRef> Owners => _byOwner.Keys;

    public bool TryGet(ConnectionKey key, out VsockStream stream) => _byKey.TryGetValue(key, out stream!);

    /// <summary>An opened stream (it has its key).</summary>
    public void Add(VsockStream stream)
    {
        _byKey.Add(stream.Key, stream);
        if (stream is SiblingStream)
            _siblingCount++;
        counters.OpenStreams = _byKey.Count;
    }

    /// <summary>Removes <paramref name="stream"/> if it is the one under its key; false if it was not there.</summary>
    public bool Remove(VsockStream stream)
    {
        if (!_byKey.TryGetValue(stream.Key, out var current) || !ReferenceEquals(current, stream))
            return false;
        _byKey.Remove(stream.Key);
        if (stream is SiblingStream)
            _siblingCount--;
        counters.OpenStreams = _byKey.Count;
        return true;
    }

    public void AddOwner(IActorRef owner, HostStream stream)
    {
        _byOwner.Add(owner, stream);
        _owners.Add(stream, owner);
    }

    public HostStream? StreamOf(IActorRef owner) => _byOwner.GetValueOrDefault(owner);

    public IActorRef? OwnerOf(HostStream stream) => _owners.GetValueOrDefault(stream);

    public HostStream? RemoveOwner(IActorRef owner)
    {
        if (!_byOwner.Remove(owner, out var stream))
            return null;
        _owners.Remove(stream);
        return stream;
    }

    /// <summary>The sibling streams with the VM of <paramref name="cid"/>.</summary>
    public List<SiblingStream> SiblingsOf(ulong cid) =>
        _byKey.Values.OfType<SiblingStream>().Where(s => s.Key.PeerCid == cid).ToList();

    public List<SiblingStream> Siblings() => _byKey.Values.OfType<SiblingStream>().ToList();

    /// <summary>A host-side port such that (2, port, guest port) names no live stream.</summary>
    public bool TryAllocateHostPort(uint guestPort, out ConnectionKey key)
    {
        for (var attempt = 0u; attempt <= (uint)_byKey.Count && attempt < uint.MaxValue - FirstHostPort; attempt++)
        {
            var port = _nextHostPort;
            _nextHostPort = _nextHostPort == uint.MaxValue - 1 ? FirstHostPort : _nextHostPort + 1;
            key = new ConnectionKey(VsockConstants.HostCid, port, guestPort);
            if (!_byKey.ContainsKey(key))
                return true;
        }
        key = default;
        return false;
    }

    /// <summary>Forgets every stream and owner (the guest's driver went away); the caller stops the owners.</summary>
    public void Clear()
    {
        _byKey.Clear();
        _siblingCount = 0;
        counters.OpenStreams = 0;
        _byOwner.Clear();
        _owners.Clear();
    }
}
