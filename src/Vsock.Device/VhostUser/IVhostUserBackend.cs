using Microsoft.Win32.SafeHandles;
using Vsock.Device.Memory;

namespace Vsock.Device.VhostUser;

/// <summary>
/// The device side a <see cref="VhostUserSession"/> drives (mirrors rust-vmm's VhostUserBackend). The
/// session calls it from the one thread that handles the VMM's requests, one call at a time.
/// Fds handed over here belong to the backend from then on.
/// </summary>
public interface IVhostUserBackend
{
    /// <summary>Virtio features offered (GET_FEATURES), including bit 30 VHOST_USER_F_PROTOCOL_FEATURES.</summary>
    ulong Features { get; }

    /// <summary>Protocol features offered; a subset of <see cref="VhostUserSession.SupportedProtocolFeatures"/>.</summary>
    ulong ProtocolFeatures { get; }

    /// <summary>Number of rings (GET_QUEUE_NUM); 3 for vsock (rx, tx, event).</summary>
    int QueueCount { get; }

    /// <summary>Largest ring size SET_VRING_NUM may ask for.</summary>
    int MaxQueueSize { get; }

    /// <summary>The device config space GET_CONFIG reads (vsock: le64 guest_cid).</summary>
    ReadOnlySpan<byte> ConfigSpace { get; }

    /// <summary>SET_FEATURES accepted these bits (all of them offered).</summary>
    void FeaturesAcked(ulong features);

    /// <summary>
    /// A new memory table is in effect. The backend must stop using the previous table before returning:
    /// right after this call the session releases the regions the new table no longer contains. Every running
    /// ring's areas lie inside the new table (the session refuses a table that drops one).
    /// </summary>
    void MemoryChanged(GuestMemory memory);

    /// <summary>
    /// Ring <paramref name="index"/> is started (kicked) and enabled, with translated guest addresses; its
    /// whole descriptor table, available and used rings lie inside the current memory table. Called once per start; the backend owns <see cref="VringConfig.KickFd"/>.
    /// </summary>
    void RingStarted(int index, VringConfig config);

    /// <summary>
    /// GET_VRING_BASE (or a kick fd replaced while running): stop ring <paramref name="index"/>, release
    /// its kick fd, and return the next available index it would have processed.
    /// </summary>
    ushort RingStopped(int index);

    /// <summary>SET_VRING_CALL: the fd to signal used buffers on (null: none, the front-end polls). Replaces the previous one.</summary>
    void CallFdChanged(int index, SafeFileHandle? callFd);

    /// <summary>SET_VRING_ENABLE on a started ring. A disabled ring keeps its state but must not move data.</summary>
    void RingEnabledChanged(int index, bool enabled);

    /// <summary>
    /// RESET_OWNER, RESET_DEVICE or disconnect: stop every ring and drop ring and connection state
    /// (including kick and call fds). Memory is not part of it: it changes only through <see cref="MemoryChanged"/>.
    /// Must tolerate being called when nothing runs.
    /// </summary>
    void Reset();
}

/// <summary>
/// Everything a started ring needs. Addresses are guest physical; <see cref="NextAvail"/> is where to
/// resume (SET_VRING_BASE). <see cref="KickFd"/> is null when the front-end set no kick fd (polling).
/// </summary>
public sealed record VringConfig(
    int Index,
    ushort Size,
    ulong DescTableGpa,
    ulong AvailRingGpa,
    ulong UsedRingGpa,
    ushort NextAvail,
    bool EventIdx,
    bool IndirectDescriptors,
    bool NotifyOnEmpty,
    SafeFileHandle? KickFd);
