using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Vsock.Device.Diagnostics;

/// <summary>
/// The <c>VsockActors</c> meter (<see cref="System.Diagnostics.Metrics"/>): observable instruments over every
/// registered VM's <see cref="DeviceCounters"/>, one measurement per VM tagged <c>guest_cid</c>. Nothing is
/// computed until a listener (dotnet-counters, the Prometheus endpoint) collects, so with no listener the data
/// path's cost is the counters' field increments.
/// </summary>
public static class VsockMeter
{
    public const string Name = "VsockActors";

    private static readonly ConcurrentDictionary<ulong, DeviceCounters> Vms = new();

    public static Meter Meter { get; } = Create();

    /// <summary>The registered VMs' counters, by guest CID (the benchmark's statistics file reads them all).</summary>
    public static IReadOnlyDictionary<ulong, DeviceCounters> Registered => Vms;

    /// <summary>Makes <paramref name="counters"/> observable as VM <paramref name="cid"/>; replaces an earlier registration of that CID.</summary>
    public static void Register(ulong cid, DeviceCounters counters) => Vms[cid] = counters;

    /// <summary>Stops observing VM <paramref name="cid"/> if <paramref name="counters"/> is what is registered for it.</summary>
    public static void Unregister(ulong cid, DeviceCounters counters)
    {
        Vms.TryRemove(new KeyValuePair<ulong, DeviceCounters>(cid, counters));
    }

    private static Meter Create()
    {
        var meter = new Meter(Name);
        // Names and units follow OpenTelemetry's conventions (dotted names, UCUM units, no "_total"): a Prometheus
        // exporter derives vsock_rx_bytes_total and the like from them (docs: README, "Metrics"). "rx" is toward the
        // guest (its RX ring), "tx" from it, as in the virtio spec.
        Counter(meter, "vsock.rx.bytes", "By", "Payload bytes delivered into the guest's RX ring (from host sockets and sibling VMs)", c => c.RxBytes);
        Counter(meter, "vsock.rx.packets", "{packet}", "Packets delivered into the guest's RX ring, control packets included", c => c.RxPackets);
        Counter(meter, "vsock.tx.bytes", "By", "Payload bytes the guest sent (its TX ring)", c => c.TxBytes);
        Counter(meter, "vsock.tx.packets", "{packet}", "Valid packets the guest sent, control packets included", c => c.TxPackets);
        Counter(meter, "vsock.rx.turns", "{turn}", "Turns of filling the guest's RX ring (each ends with at most one interrupt)", c => c.RxTurns);
        Counter(meter, "vsock.rx.reads", "{read}", "Host socket reads straight into RX buffers (one recvmsg each, any number of buffers)", c => c.RxReads);
        Counter(meter, "vsock.rx.notifications", "{notification}", "Interrupts sent to the guest for its RX ring (call eventfd writes)", c => c.RxNotifications);
        Counter(meter, "vsock.tx.notifications", "{notification}", "Interrupts sent to the guest for its TX ring (call eventfd writes)", c => c.TxNotifications);
        Counter(meter, "vsock.tx.kicks", "{kick}", "TX ring turns started by a guest kick (the others found work by polling the ring)", c => c.TxKicks);
        Counter(meter, "vsock.loop.idle_poll", "us", "Time the VM's event loop polled with nothing to do before sleeping: the part of its CPU time that is not work", c => c.LoopIdlePollMicroseconds);
        Counter(meter, "vsock.connections.opened", "{connection}", "Streams set up (REQUEST answered by RESPONSE): host, guest or sibling initiated", c => c.StreamsOpened);
        Counter(meter, "vsock.connections.refused", "{connection}", "Connection attempts that ended without a stream (no listener, unreachable CID, no answer, device not ready)", c => c.StreamsRefused);
        Counter(meter, "vsock.connections.reset", "{connection}", "Streams that were up and ended abnormally with an RST to the guest (host socket error, protocol or credit violation, peer gone)", c => c.StreamsReset);
        meter.CreateObservableUpDownCounter("vsock.connections.open", () => Observe(c => c.OpenStreams), "{connection}", "Streams open now (being set up, up, or closing)");
        Counter(meter, "vsock.credit.stalls.guest", "{stall}", "Times host data had to wait because the guest gave no credit (a CREDIT_REQUEST went to it)", c => c.CreditStallsTowardGuest);
        Counter(meter, "vsock.credit.stalls.host", "{stall}", "Times a host socket was full and guest data waited in the stream's TX buffer (the guest's credit then runs down)", c => c.HostSocketFull);
        Counter(meter, "vsock.rx.buffer_starvation", "{turn}", "RX turns that ran out of guest RX buffers with data still waiting for the guest", c => c.RxBufferStarvation);
        Counter(meter, "vsock.sibling.packets.sent", "{packet}", "Packets the guest sent to sibling VMs", c => c.SiblingPacketsSent);
        Counter(meter, "vsock.sibling.packets.received", "{packet}", "Packets sibling VMs sent to this guest", c => c.SiblingPacketsReceived);
        Counter(meter, "vsock.vmm.sessions", "{session}", "VMM connections accepted on the vhost-user socket", c => c.VmmSessions);
        Counter(meter, "vsock.vmm.disconnects", "{session}", "VMM connections ended (the VMM went away, broke the protocol or stalled, or the device stopped)", c => c.VmmDisconnects);
        Counter(meter, "vsock.device.restarts", "{restart}", "Devices started after the first (the VM's supervisor replaced a failed device)",
            c => Math.Max(0, c.DeviceStarts - 1));
        return meter;
    }

    private static void Counter(Meter meter, string name, string unit, string description, Func<DeviceCounters, long> read) =>
        meter.CreateObservableCounter(name, () => Observe(read), unit, description);

    private static IEnumerable<Measurement<long>> Observe(Func<DeviceCounters, long> read)
    {
        foreach (var (cid, counters) in Vms)
            yield return new Measurement<long>(read(counters), Tag(cid));
    }

    private static KeyValuePair<string, object?> Tag(ulong cid) => new("guest_cid", cid);
}
