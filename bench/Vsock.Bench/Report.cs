using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Vsock.Bench;

internal enum Placement
{
    Pinned,
    Unpinned,
}

/// <summary>Who sets a connection up in the set-up rate phase.</summary>
internal enum SetUp
{
    /// <summary>A host application: CONNECT → OK on the VM's uds-path; the guest accepts.</summary>
    HostInitiated,
    /// <summary>The guest: REQUEST → RESPONSE; a host application listening on uds-path_PORT accepts.</summary>
    GuestInitiated,
}

/// <summary>The busy load of the latency phase as it ran: which CPU, the hog's own mask, how much CPU it got.</summary>
internal readonly record struct BusyLoad(int Cpu, string CpusAllowed, double Cores);

/// <summary>
/// Collects the measurements and prints them as Markdown (docs/BENCHMARKS.md takes it as is): the tables,
/// the targets of issue 10 (<see cref="Targets"/>), and at the end a comment with every figure on its own
/// line, which <c>scripts/bench-runs.sh</c> summarises over several runs (<see cref="RunSummary"/>).
/// </summary>
internal sealed class Report(BenchOptions options)
{
    public static readonly (int Size, int Streams)[] ThroughputCells = [(4096, 1), (4096, 4), (65536, 1), (65536, 4)];
    public static readonly Direction[] Directions = [Direction.HostToGuest, Direction.GuestToHost];
    public static readonly Placement[] Placements = [Placement.Pinned, Placement.Unpinned];

    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly StringBuilder _out = new();

    public BenchOptions Options => options;
    public Dictionary<(int Size, int Streams), double> Reference { get; } = [];
    public Dictionary<(Placement, Direction, int Size, int Streams), ThroughputResult> Throughput { get; } = [];
    public Dictionary<(Placement, Load, RoundTrip), LatencyResult> Latency { get; } = [];
    public BusyLoad? Busy { get; set; }
    public Dictionary<(Placement, SetUp), RateResult> Rate { get; } = [];
    public Dictionary<(Placement, Direction), MultiVmResult> MultiVm { get; } = [];
    public Dictionary<string, string> DaemonCpus { get; } = [];
    public GcResult? Gc { get; set; }
    public Placement GcPlacement { get; set; }
    public IdleMemoryResult? Memory { get; set; }
    public Placement MemoryPlacement { get; set; }
    public Dictionary<int, double> SeqpacketReference { get; } = [];
    public LatencyResult? SeqpacketReferenceRoundTrip { get; set; }
    public Dictionary<(Placement, Direction, int Size), MessageRate> Seqpacket { get; } = [];
    public Dictionary<(Placement, RoundTrip), LatencyResult> SeqpacketRoundTrip { get; } = [];
    public List<string> Notes { get; } = [];
    public List<string> DaemonWarnings { get; } = [];

    /// <summary>What a daemon left for the report: its warnings, and how its /metrics scrapes went.</summary>
    public void SessionEnded(DaemonProcess daemon)
    {
        DaemonWarnings.AddRange(daemon.Stderr);
        if (daemon.Scraper is { } scraper)
            Notes.Add($"metrics: {scraper.Scrapes} scrapes of a daemon with {daemon.Vms.Count} VM(s), {scraper.Failures} failed, the last {scraper.LastBytes} bytes");
    }

    public void Progress(string what) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {what}");

    public void Header(ulong fdLimit)
    {
        var cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?";
        var load = File.ReadAllText("/proc/loadavg").Trim();
        var daemonArgs = string.Join(" ", DaemonProcess.Arguments(DaemonProcess.Layout("$D", 1), options.Daemon));
        var settings = options.Daemon with { MetricsScrapeMs = 0 } == DaemonSettings.Issue10 ? "issue 10's settings, this benchmark's defaults" : "given on the command line (issue 10 measured with 262144 and 256)";
        Line("# vhost-device-vsock benchmark");
        Line();
        Line($"- machine: {Environment.ProcessorCount} CPUs ({cpu}), {Environment.OSVersion.VersionString}, .NET {Environment.Version}; load average at start: {load}; started {DateTime.Now:yyyy-MM-dd HH:mm:ss}");
        Line($"- daemon: `dotnet {Path.GetFileName(options.LauncherDll)} {daemonArgs}` (Release), a separate process, `$D` a fresh temporary directory per daemon; " +
             $"--tx-buffer-size {options.Daemon.TxBufferSize} and --queue-size {options.Daemon.QueueSize}: {settings}");
        Line(options.Daemon.MetricsScrapeMs > 0
            ? $"- metrics endpoint: on (`--metrics-listen 127.0.0.1:PORT`, a free port per daemon), `/metrics` scraped every {options.Daemon.MetricsScrapeMs} ms by this process"
            : "- metrics endpoint: off (no `--metrics-listen`)");
        Line($"- driver: this process; a synthetic guest (QEMU 7.2 + Linux virtio-vsock: 128-entry rings, 4 KiB RX buffers, EVENT_IDX, buf_alloc {options.GuestBufAlloc / 1024} KiB{(options.GuestBufAlloc == 256 * 1024 ? "" : " (--guest-buf-alloc; Linux's default is 256)")}, 64 KiB max packet) over the real vhost-user socket, and host applications on the real unix sockets (blocking calls, one thread per stream)");
        Line($"- guest applications: inside the driver thread (sink, source, echo, ping-pong, accept-and-close, connect-and-close; no copy to an application buffer, no hand-off to a task); " +
             $"TX interrupts {(options.LazyTxReclaim ? "only when TX room is needed (lazy reclaim)" : "always (as Linux virtio-vsock)")}; " +
             $"driver polls {options.GuestPollMicroseconds} µs before it sleeps");
        Line($"- CPUs: pinned = daemon on {CpuPlacement.Describe(CpuPlacement.DaemonMask)}, driver on {CpuPlacement.Describe(CpuPlacement.DriverMask)}; unpinned = the scheduler places both on {CpuPlacement.Describe(CpuPlacement.AllCpus)}; the references always have {CpuPlacement.Describe(CpuPlacement.AllCpus)}");
        Line($"- busy (latency only): `Vsock.Bench {CpuHog.Argument} {CpuPlacement.DaemonCpu}`, a separate process spinning on {CpuPlacement.Describe(CpuPlacement.DaemonMask)}, while the daemon, the driver and the reference run unpinned");
        Line($"- CPU columns: CPU-seconds per second of the measurement from the kernel's CPU clocks (1.00 = one CPU busy all the time)");
        Line($"- open-file limit (soft, raised to hard): {fdLimit}");
        Console.Error.Write(_out.ToString());
    }

    public void Print()
    {
        Line($"- run took {Stopwatch.GetElapsedTime(_started).TotalSeconds:0} s; load average at end: {File.ReadAllText("/proc/loadavg").Trim()}");
        foreach (var (what, cpus) in DaemonCpus)
            Line($"- daemon Cpus_allowed_list ({what}): {cpus}");
        PrintThroughput();
        PrintLatency();
        PrintRate();
        PrintSeqpacket();
        PrintMultiVm();
        PrintMemory();
        PrintGc();
        var targets = Targets.Evaluate(this);
        PrintTargets(targets);
        if (Notes.Count > 0)
        {
            Line();
            foreach (var note in Notes)
                Line($"- note: {note}");
        }
        var warnings = DaemonWarnings.Where(w => !string.IsNullOrWhiteSpace(w)).ToList();
        Line();
        Line(warnings.Count == 0 ? "Daemon log (warn and above): empty." : $"Daemon log (warn and above), {warnings.Count} line(s), first 5:");
        foreach (var w in warnings.Take(5))
            Line($"    {w}");
        Line();
        Line(RunSummary.BlockStart);
        foreach (var (name, value) in Figures(targets))
            Line($"{name} {RunSummary.Separator} {value}");
        Line(RunSummary.BlockEnd);
        Console.Out.Write(_out.ToString());
    }

    private void PrintThroughput()
    {
        if (Reference.Count == 0 && Throughput.Count == 0)
            return;
        Line();
        Line($"## Throughput (MB/s = 10^6 bytes/s, {options.CellBytes >> 20} MiB per cell, split over the streams; after {WarmupRounds} warm-up rounds of 16 MiB per cell, {WarmupPause.TotalMilliseconds:0} ms apart)");
        Line();
        var placements = Throughput.Keys.Select(k => k.Item1).Distinct().Order().ToList();
        var head = new StringBuilder("| direction | write | streams | reference |");
        var rule = new StringBuilder("|---|---|---:|---:|");
        foreach (var p in placements)
        {
            head.Append(CultureInfo.InvariantCulture, $" {Name(p)} | × ref | daemon CPU | driver CPU |");
            rule.Append("---:|---:|---:|---:|");
        }
        Line(head.ToString());
        Line(rule.ToString());
        foreach (var direction in Directions)
        {
            foreach (var (size, streams) in ThroughputCells)
            {
                var reference = Reference.GetValueOrDefault((size, streams));
                var row = new StringBuilder($"| {DirectionName(direction)} | {size / 1024} KiB | {streams} | {Mb(reference)} |");
                foreach (var p in placements)
                {
                    var cell = Throughput.GetValueOrDefault((p, direction, size, streams));
                    var value = cell.BytesPerSecond;
                    row.Append(CultureInfo.InvariantCulture, $" {Mb(value)} | {Ratio(value, reference)} | {Cores(cell.DaemonCores)}{(double.IsNaN(cell.DaemonIdlePollCores) ? "" : $" ({Cores(cell.DaemonIdlePollCores)})")} | {Cores(cell.DriverCores)} ({Cores(cell.GuestCores)} + {Cores(cell.HostCores)}) |");
                }
                Line(row.ToString());
            }
        }
        Line();
        Line("CPU columns: the daemon process, in brackets the part of it that was its VM loop polling with nothing to do (the spin of up to 50 µs before it sleeps: not work, so the daemon was busy for the difference); the driver, in brackets the synthetic guest's driver thread + the host application threads (the rest of the driver's is the runtime's own threads).");
        Line("Reference: the same bytes through one connected pair of unix stream sockets per stream, a writer thread and a reader thread that copies every read once more (memcpy into a second buffer).");
    }

    private void PrintLatency()
    {
        if (Latency.Count == 0)
            return;
        Line();
        Line($"## 64-byte request/response round trip (µs; {options.LatencySamples} samples after {LatencyWarmup(options)} warm-up round trips, one at a time)");
        Line();
        Line("| client → echo | CPUs | idle p50 | idle p99 | busy p50 | busy p99 |");
        Line("|---|---|---:|---:|---:|---:|");
        foreach (var placement in Placements)
        {
            foreach (var trip in new[] { RoundTrip.HostClient, RoundTrip.GuestClient, RoundTrip.Reference })
            {
                if (!Latency.ContainsKey((placement, Load.Idle, trip)) && !Latency.ContainsKey((placement, Load.Busy, trip)))
                    continue;
                var cpus = trip == RoundTrip.Reference ? $"{CpuPlacement.Describe(CpuPlacement.AllCpus)}, next to {Name(placement)}" : Name(placement);
                var idle = Latency.TryGetValue((placement, Load.Idle, trip), out var i) ? $"{i.P50Micros:0.0} | {i.P99Micros:0.0}" : "– | –";
                var busy = Latency.TryGetValue((placement, Load.Busy, trip), out var b) ? $"{b.P50Micros:0.0} | {b.P99Micros:0.0}" : "– | –";
                Line($"| {RoundTripName(trip)} | {cpus} | {idle} | {busy} |");
            }
        }
        Line();
        Line("Each placement's block starts with its own reference, measured right before its round trips in the same conditions (the driver process on all CPUs for it).");
        Line($"Idle: nothing of ours runs besides the measured pair. Busy: the hog (header) spins on {CpuPlacement.Describe(CpuPlacement.DaemonMask)} during the reference and both round trips, with everything else unpinned; " +
             "the pinned placement has no busy variant (its daemon CPU would be the hog's).");
        if (Busy is { } busyLoad)
            Line($"The hog's Cpus_allowed_list: {busyLoad.CpusAllowed}; it got {busyLoad.Cores:0.00} CPU-seconds per second while the busy round trips ran.");
    }

    private void PrintRate()
    {
        if (Rate.Count == 0)
            return;
        Line();
        Line($"## Connection set-up (connections per second; {options.RateConnections} connections, {RateConcurrency} at a time, each set up and closed by both ends; after {WarmupRounds} warm-up rounds of 500 each way, {WarmupPause.TotalMilliseconds:0} ms apart)");
        Line();
        Line("| who connects | CPUs | per second | daemon CPU | guest driver thread CPU | host threads CPU | driver process CPU | machine CPU (all processes) |");
        Line("|---|---|---:|---:|---:|---:|---:|---:|");
        foreach (var setUp in new[] { SetUp.HostInitiated, SetUp.GuestInitiated })
        {
            foreach (var placement in Placements)
            {
                if (Rate.TryGetValue((placement, setUp), out var r))
                    Line($"| {SetUpName(setUp)} | {Name(placement)} | {r.PerSecond:0} | {Cores(r.Cpu.Daemon)} | {Cores(r.Cpu.GuestDriver)} | {Cores(r.Cpu.HostApps)} | {Cores(r.Cpu.Driver)} | {Cores(r.Cpu.Machine)} |");
            }
        }
        Line();
        Line($"Guest side: the synthetic guest's driver thread accepts and closes (host-initiated) or keeps {RateConcurrency} REQUESTs in flight and closes each stream on RESPONSE (guest-initiated), no task per connection. " +
             $"Host side: {RateConcurrency} threads each connecting, sending CONNECT, reading OK and closing with blocking calls (host-initiated), or one thread accepting and closing (guest-initiated). " +
             "The guest side is one thread: near 1.00 in its column it, not the daemon, sets the pace. The driver process column adds the runtime's own threads. " +
             $"Machine: all CPUs, all processes (/proc/stat; at most {CpuPlacement.CpuCount}.00): what it has beyond daemon + driver, other programs used meanwhile.");
    }

    private void PrintSeqpacket()
    {
        if (Seqpacket.Count == 0 && SeqpacketRoundTrip.Count == 0)
            return;
        var bytes = Math.Max(options.CellBytes / 4, 8L << 20);
        Line();
        Line($"## SEQPACKET (issue 12; one stream, {bytes >> 20} MiB of messages of one size per row; no target)");
        Line();
        Line("| direction | message | reference msg/s | CPUs | msg/s | MB/s | × ref | daemon CPU | driver CPU |");
        Line("|---|---|---:|---|---:|---:|---:|---:|---:|");
        foreach (var direction in Directions)
        {
            foreach (var size in SeqpacketBench.MessageSizes)
            {
                foreach (var placement in Placements)
                {
                    if (!Seqpacket.TryGetValue((placement, direction, size), out var m))
                        continue;
                    var reference = SeqpacketReference.GetValueOrDefault(size);
                    Line($"| {DirectionName(direction)} | {size / 1024} KiB | {Count(reference)} | {Name(placement)} | {Count(m.MessagesPerSecond)} | {Mb(m.BytesPerSecond)} | " +
                         $"{Ratio(m.MessagesPerSecond, reference)} | {Cores(m.DaemonCores)} | {Cores(m.DriverCores)} |");
                }
            }
        }
        Line();
        Line($"## SEQPACKET {SeqpacketBench.RoundTripSize}-byte message round trip (µs; {options.LatencySamples} samples after {LatencyWarmup(options)} warm-up)");
        Line();
        Line("| client → echo | CPUs | p50 | p99 |");
        Line("|---|---|---:|---:|");
        foreach (var placement in Placements)
        {
            foreach (var trip in new[] { RoundTrip.HostClient, RoundTrip.GuestClient })
            {
                if (SeqpacketRoundTrip.TryGetValue((placement, trip), out var r))
                    Line($"| {RoundTripName(trip)} | {Name(placement)} | {r.P50Micros:0.0} | {r.P99Micros:0.0} |");
            }
        }
        if (SeqpacketReferenceRoundTrip is { } rr)
            Line($"| reference: unix SEQPACKET socket pair, thread → thread echo | {CpuPlacement.Describe(CpuPlacement.AllCpus)} | {rr.P50Micros:0.0} | {rr.P99Micros:0.0} |");
        Line();
        Line("Host side: a blocking unix SOCK_SEQPACKET socket on `uds-path_seqpacket` (host → guest, host client) or accepted on `uds-path_PORT` (guest → host, guest client); " +
             "guest side: in-driver message sink, source, echo and ping-pong (a CREDIT_UPDATE after each message read, as Linux 6.1). " +
             "Reference: the same messages over one unix SOCK_SEQPACKET socket pair, a writer thread and a reader thread (no second copy).");
    }

    private static string Count(double perSecond) => perSecond == 0 ? "–" : perSecond.ToString("0", CultureInfo.InvariantCulture);

    private void PrintMultiVm()
    {
        if (MultiVm.Count == 0)
            return;
        var vms = MultiVm.Values.First().Vms;
        Line();
        Line($"## {vms} VMs in one daemon (64 KiB writes, one stream per VM, {options.CellBytes >> 20} MiB per row; no target)");
        Line();
        Line("| direction | CPUs | one VM | daemon CPU | driver CPU | " + vms + " VMs at once | × one VM | per VM, slowest – fastest | daemon CPU | driver CPU | one-VM daemon, 64 KiB ×1 |");
        Line("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var direction in Directions)
        {
            foreach (var placement in Placements)
            {
                if (!MultiVm.TryGetValue((placement, direction), out var m))
                    continue;
                var single = Throughput.TryGetValue((placement, direction, 65536, 1), out var t) ? Mb(t.BytesPerSecond) : "–";
                Line($"| {DirectionName(direction)} | {Name(placement)} | {Mb(m.One.BytesPerSecond)} | {Cores(m.One.DaemonCores)} | {Cores(m.One.DriverCores)} | " +
                     $"{Mb(m.All.BytesPerSecond)} | {Ratio(m.All.BytesPerSecond, m.One.BytesPerSecond)} | {Mb(m.SlowestVm)} – {Mb(m.FastestVm)} | " +
                     $"{Cores(m.All.DaemonCores)} | {Cores(m.All.DriverCores)} | {single} |");
            }
        }
        Line();
        Line($"MB/s. The daemon: one `--vm guest-cid=N,socket=$D/vhostN.sock,uds-path=$D/vmN.vsock,tx-buffer-size={options.Daemon.TxBufferSize},queue-size={options.Daemon.QueueSize}` " +
             $"per VM (N = {DaemonProcess.FirstCid}…{DaemonProcess.FirstCid + vms - 1}), each VM with its own synthetic guest (one driver thread each) in the driver process. " +
             $"One VM: the first VM's one stream alone, the others connected and idle. {vms} VMs at once: one stream per VM, the same bytes split over them, timed until the last one ends. " +
             "Per VM: each VM's bytes over the time its own stream took. Last column: the throughput table's one-stream cell (a daemon with one VM), for comparison.");
    }

    private void PrintMemory()
    {
        if (Memory is not { } m)
            return;
        Line();
        Line($"## Daemon memory with {m.Connections} idle host-initiated connections on one VM ({Name(MemoryPlacement)})");
        Line();
        Line("| | before | after | per connection |");
        Line("|---|---:|---:|---:|");
        Line($"| RSS (/proc/PID/status VmRSS) | {m.RssBefore / 1048576.0:0.0} MiB | {m.RssAfter / 1048576.0:0.0} MiB | {m.RssPerConnection / 1024:0.0} KiB |");
        Line($"| managed heap (GC.GetTotalMemory) | {m.HeapBefore.HeapBytes / 1048576.0:0.0} MiB | {m.HeapAfter.HeapBytes / 1048576.0:0.0} MiB | {m.HeapPerConnection / 1024:0.0} KiB |");
        Line();
        Line($"Daemon fds with the connections open: {m.FdsAfter} (its limit: {m.FdLimit}).");
    }

    private void PrintGc()
    {
        if (Gc is not { } g)
            return;
        Line();
        Line($"## Daemon garbage collection over {g.Bytes >> 20} MiB ({Name(GcPlacement)}; a quarter each: host→guest and guest→host, 64 KiB and 4 KiB writes, one stream)");
        Line();
        Line("| gen0 | gen1 | gen2 | allocated | packets (RX + TX) | allocated per packet |");
        Line("|---:|---:|---:|---:|---:|---:|");
        Line($"| {g.Delta.Gen0} | {g.Delta.Gen1} | {g.Delta.Gen2} | {g.Delta.AllocatedBytes / 1048576.0:0.0} MiB | {g.Packets} | {g.AllocatedPerPacket:0.0} B |");
        if (options.Daemon.MetricsScrapeMs > 0)
        {
            Line();
            Line($"/metrics was scraped {g.Scrapes} time(s) during this run; what the scrapes allocated is in the figures above.");
        }
    }

    private void PrintTargets(IReadOnlyList<Target> targets)
    {
        Line();
        Line("## Targets (issue 10)");
        Line();
        Line("| target | measured | met |");
        Line("|---|---|---|");
        foreach (var t in targets)
            Line($"| {t.Name} | {t.Measured} | {t.MetText} |");
        var checkedCount = targets.Count(t => t.Met is not null);
        Line();
        Line($"{targets.Count(t => t.Met == true)} of {checkedCount} targets met in this run. " +
             "A target with several placements (or stream counts) is met only if every one of them is. " +
             "\"not measured\": the phase did not run, or ran smaller than the target says (e.g. `--quick`).");
    }

    /// <summary>Every figure the run summary compares across runs, with a stable name.</summary>
    private IEnumerable<(string Name, string Value)> Figures(IReadOnlyList<Target> targets)
    {
        foreach (var ((placement, direction, size, streams), cell) in Throughput.OrderBy(k => k.Key))
        {
            if (Reference.TryGetValue((size, streams), out var reference))
                yield return ($"throughput × ref, {DirectionName(direction)} {size / 1024} KiB ×{streams}, {Name(placement)}", Ratio(cell.BytesPerSecond, reference));
        }
        foreach (var ((placement, load, trip), r) in Latency.OrderBy(k => k.Key))
            yield return ($"round trip p50 µs, {RoundTripName(trip)}, {Name(placement)}, {Name(load)}", r.P50Micros.ToString("0.0", CultureInfo.InvariantCulture));
        foreach (var ((placement, setUp), r) in Rate.OrderBy(k => k.Key))
            yield return ($"set-up per second, {SetUpName(setUp)}, {Name(placement)}", r.PerSecond.ToString("0", CultureInfo.InvariantCulture));
        foreach (var ((placement, direction, size), m) in Seqpacket.OrderBy(k => k.Key))
            yield return ($"SEQPACKET msg/s, {DirectionName(direction)} {size / 1024} KiB, {Name(placement)}", Count(m.MessagesPerSecond));
        foreach (var ((placement, trip), r) in SeqpacketRoundTrip.OrderBy(k => k.Key))
            yield return ($"SEQPACKET round trip p50 µs, {RoundTripName(trip)}, {Name(placement)}", r.P50Micros.ToString("0.0", CultureInfo.InvariantCulture));
        foreach (var ((placement, direction), m) in MultiVm.OrderBy(k => k.Key))
            yield return ($"{m.Vms} VMs at once × one VM, {DirectionName(direction)}, {Name(placement)}", Ratio(m.All.BytesPerSecond, m.One.BytesPerSecond));
        if (Memory is { } mem)
            yield return ($"idle RSS KiB per connection ({mem.Connections} connections)", (mem.RssPerConnection / 1024).ToString("0.0", CultureInfo.InvariantCulture));
        if (Gc is { } g)
        {
            yield return ($"GC collections gen0+gen1+gen2 over {g.Bytes >> 20} MiB", (g.Delta.Gen0 + g.Delta.Gen1 + g.Delta.Gen2).ToString(CultureInfo.InvariantCulture));
            yield return ($"allocated B per packet over {g.Bytes >> 20} MiB", g.AllocatedPerPacket.ToString("0.0", CultureInfo.InvariantCulture));
        }
        yield return ("targets met", targets.Count(t => t.Met == true).ToString(CultureInfo.InvariantCulture));
        yield return ("targets checked", targets.Count(t => t.Met is not null).ToString(CultureInfo.InvariantCulture));
    }

    public const int RateConcurrency = 16;

    /// <summary>Warm-up before the throughput and set-up phases: rounds of a little of each, each followed by a pause (Program's WarmUpAsync).</summary>
    public const int WarmupRounds = 3;

    public static readonly TimeSpan WarmupPause = TimeSpan.FromMilliseconds(300);

    public static int LatencyWarmup(BenchOptions options) => Math.Max(options.LatencySamples / 10, 100);

    public static string Name(Placement p) => p == Placement.Pinned ? "pinned" : "unpinned";

    public static string Name(Load l) => l == Load.Idle ? "idle" : "other CPU busy";

    public static string DirectionName(Direction d) => d == Direction.HostToGuest ? "host → guest" : "guest → host";

    public static string RoundTripName(RoundTrip t) => t switch
    {
        RoundTrip.HostClient => "host client → guest echo",
        RoundTrip.GuestClient => "guest client → host echo",
        _ => "reference: unix socket pair, thread → thread echo",
    };

    public static string SetUpName(SetUp s) => s == SetUp.HostInitiated ? "host-initiated (CONNECT/OK)" : "guest-initiated (REQUEST/RESPONSE)";

    public static string Mb(double bytesPerSecond) => bytesPerSecond == 0 ? "–" : (bytesPerSecond / 1e6).ToString("0", CultureInfo.InvariantCulture);

    private static string Cores(double cores) => cores == 0 ? "–" : cores.ToString("0.00", CultureInfo.InvariantCulture);

    public static string Ratio(double value, double reference) => value == 0 || reference == 0 ? "–" : (value / reference).ToString("0.00", CultureInfo.InvariantCulture);

    private void Line(string text = "") => _out.Append(text).Append('\n');
}
