using Vsock.Device.Threading;

namespace Vsock.Device.Diagnostics;

/// <summary>
/// One VM's counters: plain fields, incremented on the VM's event-loop thread only (the data path pays a field
/// increment, no atomics, no allocation), read from any thread by <see cref="VsockMeter"/> (aligned 64-bit reads
/// are not torn on the 64-bit platforms we run on; a reader may see a value a few increments old). The VM's
/// supervisor owns them, so they outlive VMM sessions and device restarts; the daemon's start is their zero.
/// </summary>
public sealed class DeviceCounters
{
    // Data, each direction ("rx": toward the guest; "tx": from the guest), payload bytes and packets of every kind.
    public long RxBytes;
    public long RxPackets;
    public long TxBytes;
    public long TxPackets;

    // How the rings were worked: turns, reads straight into RX buffers, and notifications (call eventfd writes).
    public long RxTurns;
    public long RxReads;
    public long RxNotifications;
    public long TxTurns;
    public long TxNotifications;
    /// <summary>TX turns started by a guest kick rather than found by polling the ring.</summary>
    public long TxKicks;

    // Streams.
    /// <summary>Streams open now (set by the device when its table changes).</summary>
    public long OpenStreams;
    /// <summary>Streams set up: a REQUEST answered with RESPONSE (counted where the stream becomes established).</summary>
    public long StreamsOpened;
    /// <summary>Connection attempts that ended without a stream: a REQUEST answered with RST, either way, or refused by the device.</summary>
    public long StreamsRefused;
    /// <summary>Established streams ended by an RST to the guest other than the answer to the guest's own close.</summary>
    public long StreamsReset;

    /// <summary>A stream had host data for the guest but no credit left (it asked the guest for credit).</summary>
    public long CreditStallsTowardGuest;
    /// <summary>A host socket refused guest data (full): the rest waited in the stream's TX buffer.</summary>
    public long HostSocketFull;
    /// <summary>An RX turn ended with work left because the guest had no RX buffer.</summary>
    public long RxBufferStarvation;

    public long SiblingPacketsSent;
    public long SiblingPacketsReceived;

    public long VmmSessions;
    public long VmmDisconnects;
    public long DeviceStarts;

    /// <summary>
    /// The VM's event loop, set by the device when it starts (not a count, so the statistics file, which writes every
    /// <c>long</c> here, leaves it out): its idle polling is the part of the loop thread's CPU time that is not work.
    /// </summary>
    public EventLoop? Loop { get; set; }

    /// <summary>Microseconds the VM's loop spent polling with nothing to do (0 before a device started).</summary>
    public long LoopIdlePollMicroseconds => Loop?.IdlePollMicroseconds ?? 0;
}
