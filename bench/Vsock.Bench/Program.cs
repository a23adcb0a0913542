using System.Globalization;
using Vsock.Bench;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

// Hidden: the busy load of the latency phase (CpuHog starts this binary so).
if (args.Length > 0 && args[0] == CpuHog.Argument)
    return CpuHog.Spin(args);
if (args.Length > 0 && args[0] == "--summarize")
    return RunSummary.Print(args[1..]);
// The soak runs of docs/RELIABILITY.md (scripts/soak.sh), and the VMM process the vmm-kill soak starts and kills.
if (args.Length > 0 && args[0] == "--soak")
    return await Vsock.Bench.Soak.SoakRunner.RunAsync(args[1..]);
if (args.Length > 0 && args[0] == Vsock.Bench.Soak.VmmKillSoak.ChildArgument)
    return await Vsock.Bench.Soak.VmmKillSoak.ChildAsync(args[1..]);

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

var report = new Report(options);
var fdLimit = Native.RaiseOpenFileLimit();
report.Header(fdLimit);
var scratch = Directory.CreateTempSubdirectory("vbench-ref-").FullName;
try
{
    if (options.Phases.Contains("reference"))
    {
        report.Progress("reference throughput");
        // Both CPUs: the reference's writer and reader each get a core, the best a relay could hope for.
        CpuPlacement.Apply(Environment.ProcessId, CpuPlacement.AllCpus);
        foreach (var (size, streams) in Report.ThroughputCells)
            report.Reference[(size, streams)] = await ReferenceBench.RunAsync(scratch, size, streams, options.CellBytes);
    }

    var placements = new List<Placement>();
    if (options.Pinned && CpuPlacement.CpuCount > 1)
        placements.Add(Placement.Pinned);
    if (options.Unpinned || placements.Count == 0)
        placements.Add(Placement.Unpinned);
    if (options.Phases.Contains("latency") && !placements.Contains(Placement.Unpinned))
        report.Notes.Add("latency: the busy variant runs in the unpinned placement only, which this run left out");
    if (options.Phases.Contains("latency") && CpuPlacement.CpuCount < 2)
        report.Notes.Add("latency: one CPU, so no busy variant (the hog needs a CPU of its own)");

    foreach (var placement in placements)
    {
        var (driverMask, daemonMask) = placement == Placement.Pinned
            ? (CpuPlacement.DriverMask, CpuPlacement.DaemonMask)
            : (CpuPlacement.AllCpus, CpuPlacement.AllCpus);
        CpuPlacement.Apply(Environment.ProcessId, driverMask);

        if (options.Phases.Overlaps(["throughput", "latency", "rate", "gc", "seqpacket"]))
        {
            await using var session = await Session.StartAsync(options, daemonMask);
            report.DaemonCpus[Report.Name(placement)] = session.Daemon.ReadStatusText("Cpus_allowed_list");
            if (options.Phases.Contains("throughput"))
            {
                // Every shape of cell a little, in rounds with pauses: tiered JIT and the buffer pools settle before
                // timing (see WarmUpAsync).
                await WarmUpAsync(async () =>
                {
                    foreach (var direction in Report.Directions)
                    {
                        foreach (var (size, streams) in Report.ThroughputCells)
                            await ThroughputBench.RunAsync(session, direction, size, streams, 16L << 20);
                    }
                });
                foreach (var direction in Report.Directions)
                {
                    foreach (var (size, streams) in Report.ThroughputCells)
                    {
                        report.Progress($"{placement} throughput {direction} {size / 1024} KiB x{streams}");
                        report.Throughput[(placement, direction, size, streams)] =
                            await ThroughputBench.RunAsync(session, direction, size, streams, options.CellBytes);
                    }
                }
            }
            if (options.Phases.Contains("latency"))
            {
                await MeasureLatencyAsync(session, placement, Load.Idle, driverMask);
                if (placement == Placement.Unpinned && CpuPlacement.CpuCount > 1)
                {
                    using var hog = await CpuHog.StartAsync(CpuPlacement.DaemonCpu);
                    var hogCpu = hog.CpuTime;
                    var started = System.Diagnostics.Stopwatch.GetTimestamp();
                    await MeasureLatencyAsync(session, placement, Load.Busy, driverMask);
                    var seconds = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
                    report.Busy = new BusyLoad(hog.Cpu, hog.CpusAllowed, (hog.CpuTime - hogCpu).TotalSeconds / seconds);
                }
            }
            if (options.Phases.Contains("rate"))
            {
                report.Progress($"{placement} connection set-up");
                await WarmUpAsync(async () =>
                {
                    await ConnectionRateBench.HostInitiatedAsync(session, 500, Report.RateConcurrency);
                    await ConnectionRateBench.GuestInitiatedAsync(session, 500, Report.RateConcurrency);
                });
                report.Rate[(placement, SetUp.HostInitiated)] = await ConnectionRateBench.HostInitiatedAsync(session, options.RateConnections, Report.RateConcurrency);
                report.Rate[(placement, SetUp.GuestInitiated)] = await ConnectionRateBench.GuestInitiatedAsync(session, options.RateConnections, Report.RateConcurrency);
            }
            if (options.Phases.Contains("seqpacket"))
                await MeasureSeqpacketAsync(session, placement, driverMask);
            if (options.Phases.Contains("gc") && placement == placements[0])
            {
                report.Progress($"{placement} GC over {options.GcBytes >> 20} MiB");
                report.Gc = await GcBench.RunAsync(session, options.GcBytes);
                report.GcPlacement = placement;
            }
            report.SessionEnded(session.Daemon);
        }

        if (options.Phases.Contains("multivm"))
        {
            await using var session = await Session.StartAsync(options, daemonMask, MultiVmBench.VmCount);
            report.DaemonCpus[$"{Report.Name(placement)}, {MultiVmBench.VmCount} VMs"] = session.Daemon.ReadStatusText("Cpus_allowed_list");
            using (var warmup = new CancellationTokenSource(TimeSpan.FromMinutes(2)))
            {
                // Every VM's loop and pools once before timing.
                foreach (var vm in session.Vms)
                {
                    var (hosts, guests) = await ThroughputBench.OpenStreamsAsync(session, vm, 1, warmup.Token);
                    try
                    {
                        await ThroughputBench.MoveAsync(session, hosts, guests, Direction.HostToGuest, 64 * 1024, 8L << 20, warmup.Token);
                    }
                    finally
                    {
                        await ThroughputBench.CloseAsync(hosts, guests);
                    }
                }
            }
            foreach (var direction in Report.Directions)
            {
                report.Progress($"{placement} {MultiVmBench.VmCount} VMs {direction}");
                report.MultiVm[(placement, direction)] = await MultiVmBench.RunAsync(session, direction, 64 * 1024, options.CellBytes);
            }
            report.SessionEnded(session.Daemon);
        }

        if (options.Phases.Contains("memory") && placement == placements[0])
        {
            report.Progress($"{placement} idle memory, {options.IdleConnections} connections");
            await using var session = await Session.StartAsync(options, daemonMask);
            var wanted = options.IdleConnections;
            var daemonLimit = session.Daemon.ReadOpenFileLimit();
            var affordable = (int)Math.Min(wanted, Math.Min((long)fdLimit, daemonLimit) - 200);
            if (affordable < wanted)
                report.Notes.Add($"idle memory: open-file limit {Math.Min((long)fdLimit, daemonLimit)} allows {affordable} connections, not {wanted}");
            report.Memory = await IdleMemoryBench.RunAsync(session, affordable, 64);
            report.MemoryPlacement = placement;
            report.SessionEnded(session.Daemon);
        }
    }
}
finally
{
    Directory.Delete(scratch, recursive: true);
}

report.Print();
return 0;

// A warm-up before a phase is timed: the runtime compiles hot methods again (tier 1) only after they have run for a
// while (30 calls, then a 100 ms delay that each new method restarts), and until its compiler thread is done it
// shares the daemon's CPU with the measurement. Rounds with pauses let it finish first, so a figure is the steady
// state of a daemon that has been serving, as a daemon does for days.
static async Task WarmUpAsync(Func<Task> round)
{
    for (var i = 0; i < Report.WarmupRounds; i++)
    {
        await round();
        await Task.Delay(Report.WarmupPause);
    }
}

// SEQPACKET (issue 12): the socket-pair reference once (this process on all CPUs), then one stream each way per
// message size and the 64-byte round trips both ways through the daemon (this process on its placement's CPUs).
async Task MeasureSeqpacketAsync(Session session, Placement placement, ulong driverMask)
{
    var bytes = Math.Max(options.CellBytes / 4, 8L << 20);
    var warmup = Report.LatencyWarmup(options);
    if (report.SeqpacketReference.Count == 0)
    {
        report.Progress("SEQPACKET reference");
        CpuPlacement.Apply(Environment.ProcessId, CpuPlacement.AllCpus);
        foreach (var size in SeqpacketBench.MessageSizes)
            report.SeqpacketReference[size] = await SeqpacketBench.ReferenceThroughputAsync(size, bytes);
        report.SeqpacketReferenceRoundTrip = await SeqpacketBench.ReferenceRoundTripAsync(warmup, options.LatencySamples);
        CpuPlacement.Apply(Environment.ProcessId, driverMask);
    }
    await SeqpacketBench.ThroughputAsync(session, Direction.HostToGuest, 65536, 16L << 20); // warm-up
    await SeqpacketBench.ThroughputAsync(session, Direction.GuestToHost, 65536, 16L << 20);
    foreach (var direction in Report.Directions)
    {
        foreach (var size in SeqpacketBench.MessageSizes)
        {
            report.Progress($"{placement} SEQPACKET {direction} {size / 1024} KiB messages");
            report.Seqpacket[(placement, direction, size)] = await SeqpacketBench.ThroughputAsync(session, direction, size, bytes);
        }
    }
    report.Progress($"{placement} SEQPACKET round trips");
    report.SeqpacketRoundTrip[(placement, RoundTrip.HostClient)] = await SeqpacketBench.HostClientAsync(session, warmup, options.LatencySamples);
    report.SeqpacketRoundTrip[(placement, RoundTrip.GuestClient)] = await SeqpacketBench.GuestClientAsync(session, warmup, options.LatencySamples);
}

// The reference ping-pong (this process on all CPUs), then the host client and the guest client through
// the daemon (this process back on its placement's CPUs), all under the same load.
async Task MeasureLatencyAsync(Session session, Placement placement, Load load, ulong driverMask)
{
    report.Progress($"{placement} latency, {Report.Name(load)}");
    var warmup = Report.LatencyWarmup(options);
    CpuPlacement.Apply(Environment.ProcessId, CpuPlacement.AllCpus);
    report.Latency[(placement, load, RoundTrip.Reference)] = await LatencyBench.ReferenceAsync(scratch, warmup, options.LatencySamples);
    CpuPlacement.Apply(Environment.ProcessId, driverMask);
    report.Latency[(placement, load, RoundTrip.HostClient)] = await LatencyBench.HostClientAsync(session, warmup, options.LatencySamples);
    report.Latency[(placement, load, RoundTrip.GuestClient)] = await LatencyBench.GuestClientAsync(session, warmup, options.LatencySamples);
}
