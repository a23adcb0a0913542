using Vsock.Device.Connections;
using Vsock.Device.Diagnostics;

namespace Vsock.Actors.Device;

/// <summary>
/// A VM's <c>max-connections</c>: asked before every new stream or host client, on the VM's loop thread. Beyond the
/// limit the caller refuses (an RST to the guest or the sibling, a host client closed at once); the refusal is
/// counted in <see cref="DeviceCounters.StreamsRefused"/> and logged through the rate-limited <see cref="DeviceLog"/>
/// (<see cref="LogTopic.Limit"/>), since a guest can send REQUESTs as fast as it likes.
/// </summary>
internal sealed class ConnectionLimit(int max, ulong guestCid, StreamTable table, DeviceLog log, DeviceCounters counters)
{
    /// <summary>What asks for a connection.</summary>
    public enum Origin
    {
        /// <summary>Our guest's REQUEST, to the host or to a sibling.</summary>
        GuestRequest,
        /// <summary>A sibling's REQUEST for our guest.</summary>
        SiblingRequest,
        /// <summary>A host client accepted on uds-path or a forward-listen port.</summary>
        HostClient,
    }

    public int Max => max;

    /// <summary>True if one more connection fits; otherwise counts and (rate-limited) logs the refusal.</summary>
    public bool Admit(Origin origin, ConnectionKey key = default)
    {
        if (table.ConnectionCount < max)
            return true;
        counters.StreamsRefused++;
        if (log.Allow(LogTopic.Limit))
            log.Warning($"guest CID {guestCid} holds {table.ConnectionCount} connections (max-connections {max}); {Describe(origin, key)}");
        return false;
    }

    private static string Describe(Origin origin, ConnectionKey key) => origin switch
    {
        Origin.GuestRequest => $"resetting the guest's REQUEST {key}",
        Origin.SiblingRequest => $"resetting the sibling's REQUEST {key}",
        _ => "closing a new host client",
    };
}
