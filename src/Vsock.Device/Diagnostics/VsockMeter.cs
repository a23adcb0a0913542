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
        Counter(meter, "vsock.rx.bytes", "By", "payload bytes delivered to the guest", c => c.RxBytes);
        Counter(meter, "vsock.rx.packets", "{packet}", "packets delivered to the guest", c => c.RxPackets);
        Counter(meter, "vsock.tx.bytes", "By", "payload bytes the guest sent", c => c.TxBytes);
        Counter(meter, "vsock.tx.packets", "{packet}", "packets the guest sent", c => c.TxPackets);
        Counter(meter, "vsock.rx.notifications", "{notification}", "interrupts (call eventfd writes) for the RX ring", c => c.RxNotifications);
        Counter(meter, "vsock.tx.notifications", "{notification}", "interrupts (call eventfd writes) for the TX ring", c => c.TxNotifications);
        Counter(meter, "vsock.tx.kicks", "{kick}", "TX turns started by a guest kick (the others found the ring by polling)", c => c.TxKicks);
        Counter(meter, "vsock.connections.opened", "{connection}", "streams opened (host, guest or sibling initiated)", c => c.StreamsOpened);
        Counter(meter, "vsock.connections.refused", "{connection}", "connection attempts refused", c => c.StreamsRefused);
        Counter(meter, "vsock.connections.reset", "{connection}", "streams ended with an RST sent to the guest", c => c.StreamsReset);
        Counter(meter, "vsock.credit.stalls.guest", "{stall}", "host data waited because the guest gave no credit", c => c.CreditStallsTowardGuest);
        Counter(meter, "vsock.credit.stalls.host", "{stall}", "guest data waited because a host socket was full", c => c.HostSocketFull);
        Counter(meter, "vsock.rx.buffer_starvation", "{turn}", "RX turns that ran out of guest RX buffers with data waiting", c => c.RxBufferStarvation);
        Counter(meter, "vsock.sibling.packets.sent", "{packet}", "packets to sibling VMs", c => c.SiblingPacketsSent);
        Counter(meter, "vsock.sibling.packets.received", "{packet}", "packets from sibling VMs", c => c.SiblingPacketsReceived);
        Counter(meter, "vsock.vmm.sessions", "{session}", "VMM connections accepted", c => c.VmmSessions);
        Counter(meter, "vsock.vmm.disconnects", "{session}", "VMM connections ended", c => c.VmmDisconnects);
        Counter(meter, "vsock.device.restarts", "{restart}", "device starts after the first (a supervisor replaced a failed device)",
            c => Math.Max(0, c.DeviceStarts - 1));
        meter.CreateObservableUpDownCounter("vsock.connections.open", () => Observe(c => c.OpenStreams), "{connection}", "streams open now");
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
