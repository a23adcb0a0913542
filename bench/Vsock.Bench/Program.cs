using System.Globalization;
using Vsock.Bench;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

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
        // Both CPUs: the reference's writer and reader each get a core, the best a relay could hope for.
        CpuPlacement.Apply(Environment.ProcessId, CpuPlacement.AllCpus);
        foreach (var (size, streams) in Report.ThroughputCells)
            report.Reference[(size, streams)] = await ReferenceBench.RunAsync(scratch, size, streams, options.CellBytes);
        if (options.Phases.Contains("latency"))
            report.LatencyReference = await LatencyBench.ReferenceAsync(scratch, Math.Max(options.LatencySamples / 10, 100), options.LatencySamples);
    }

    var placements = new List<Placement>();
    if (options.Pinned && CpuPlacement.CpuCount > 1)
        placements.Add(Placement.Pinned);
    if (options.Unpinned || placements.Count == 0)
        placements.Add(Placement.Unpinned);

    foreach (var placement in placements)
    {
        var (driverMask, daemonMask) = placement == Placement.Pinned
            ? (CpuPlacement.DriverMask, CpuPlacement.DaemonMask)
            : (CpuPlacement.AllCpus, CpuPlacement.AllCpus);
        CpuPlacement.Apply(Environment.ProcessId, driverMask);

        if (options.Phases.Overlaps(["throughput", "latency", "rate", "gc"]))
        {
            await using var session = await Session.StartAsync(options, daemonMask);
            report.DaemonCpus[placement] = session.Daemon.ReadStatusText("Cpus_allowed_list");
            if (options.Phases.Contains("throughput"))
            {
                // A short warm-up per direction: tiered JIT and the buffer pools settle before timing.
                await ThroughputBench.RunAsync(session, Direction.HostToGuest, 64 * 1024, 1, 32L << 20);
                await ThroughputBench.RunAsync(session, Direction.GuestToHost, 64 * 1024, 1, 32L << 20);
                foreach (var direction in new[] { Direction.HostToGuest, Direction.GuestToHost })
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
                report.Progress($"{placement} latency");
                var warmup = Math.Max(options.LatencySamples / 10, 100);
                report.Latency[(placement, "host → guest echo")] = await LatencyBench.HostClientAsync(session, warmup, options.LatencySamples);
                report.Latency[(placement, "guest → host echo")] = await LatencyBench.GuestClientAsync(session, warmup, options.LatencySamples);
            }
            if (options.Phases.Contains("rate"))
            {
                report.Progress($"{placement} connection rate");
                await ConnectionRateBench.HostInitiatedAsync(session, 100, 16); // warm-up
                await ConnectionRateBench.GuestInitiatedAsync(session, 100, 16);
                report.Rate[(placement, "host-initiated (CONNECT/OK)")] = await ConnectionRateBench.HostInitiatedAsync(session, options.RateConnections, 16);
                report.Rate[(placement, "guest-initiated (REQUEST/RESPONSE)")] = await ConnectionRateBench.GuestInitiatedAsync(session, options.RateConnections, 16);
            }
            if (options.Phases.Contains("gc") && placement == placements[0])
            {
                report.Progress($"{placement} GC over {options.GcBytes >> 20} MiB");
                report.Gc = await GcBench.RunAsync(session, options.GcBytes);
                report.GcPlacement = placement;
            }
            report.DaemonWarnings.AddRange(session.Daemon.Stderr);
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
            report.DaemonWarnings.AddRange(session.Daemon.Stderr);
        }
    }
}
finally
{
    Directory.Delete(scratch, recursive: true);
}

report.Print();
return 0;

namespace Vsock.Bench
{
    internal enum Placement
    {
        Pinned,
        Unpinned,
    }
}
