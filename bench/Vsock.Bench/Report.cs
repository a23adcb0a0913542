using System.Globalization;
using System.Text;

namespace Vsock.Bench;

/// <summary>Collects the measurements and prints them as Markdown (docs/BENCHMARKS.md takes it as is).</summary>
internal sealed class Report(BenchOptions options)
{
    public static readonly (int Size, int Streams)[] ThroughputCells = [(4096, 1), (4096, 4), (65536, 1), (65536, 4)];

    public Dictionary<(int Size, int Streams), double> Reference { get; } = [];
    public Dictionary<(Placement, Direction, int Size, int Streams), ThroughputResult> Throughput { get; } = [];
    public Dictionary<(Placement, string), LatencyResult> Latency { get; } = [];
    public Dictionary<(Placement, string), double> Rate { get; } = [];
    public LatencyResult? LatencyReference { get; set; }
    public Dictionary<Placement, string> DaemonCpus { get; } = [];
    public GcResult? Gc { get; set; }
    public Placement GcPlacement { get; set; }
    public IdleMemoryResult? Memory { get; set; }
    public Placement MemoryPlacement { get; set; }
    public List<string> Notes { get; } = [];
    public List<string> DaemonWarnings { get; } = [];

    private readonly StringBuilder _out = new();

    public void Progress(string what) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {what}");

    public void Header(ulong fdLimit)
    {
        var cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?";
        var load = File.ReadAllText("/proc/loadavg").Trim();
        Line("# vhost-device-vsock benchmark");
        Line();
        Line($"- machine: {Environment.ProcessorCount} CPUs ({cpu}), {Environment.OSVersion.VersionString}, .NET {Environment.Version}; load average at start: {load}");
        Line($"- daemon: `dotnet {Path.GetFileName(options.LauncherDll)} --guest-cid 3 --socket S --uds-path U --log-level warn{string.Concat(options.DaemonArguments.Select(a => " " + a))}` (Release), a separate process");
        Line("- driver: this process; a synthetic guest (QEMU 7.2 + Linux virtio-vsock: 128-entry rings, 4 KiB RX buffers, EVENT_IDX, buf_alloc 256 KiB, 64 KiB max packet) over the real vhost-user socket, and host applications on the real unix sockets (blocking calls, one thread per stream)");
        Line($"- guest applications: inside the driver thread (sink, source, echo, ping-pong; no copy to an application buffer, no hand-off to a task); " +
             $"TX interrupts {(options.LazyTxReclaim ? "only when TX room is needed (lazy reclaim)" : "always (as Linux virtio-vsock)")}; " +
             $"driver polls {options.GuestPollMicroseconds} µs before it sleeps");
        Line($"- CPUs: pinned = daemon on {CpuPlacement.Describe(CpuPlacement.DaemonMask)}, driver on {CpuPlacement.Describe(CpuPlacement.DriverMask)}; unpinned = the scheduler places both on {CpuPlacement.Describe(CpuPlacement.AllCpus)}; the reference always has {CpuPlacement.Describe(CpuPlacement.AllCpus)}");
        Line($"- open-file limit (soft, raised to hard): {fdLimit}");
        Console.Error.Write(_out.ToString());
    }

    public void Print()
    {
        var header = _out.ToString();
        _out.Clear();
        _out.Append(header);
        foreach (var (placement, cpus) in DaemonCpus)
            Line($"- daemon Cpus_allowed_list ({placement.ToString().ToLowerInvariant()}): {cpus}");
        PrintThroughput();
        PrintLatency();
        PrintRate();
        PrintMemory();
        PrintGc();
        PrintTargets();
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
        Console.Out.Write(_out.ToString());
    }

    private void PrintThroughput()
    {
        if (Reference.Count == 0 && Throughput.Count == 0)
            return;
        Line();
        Line($"## Throughput (MB/s = 10^6 bytes/s, {options.CellBytes >> 20} MiB per cell, split over the streams)");
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
        foreach (var direction in new[] { Direction.HostToGuest, Direction.GuestToHost })
        {
            foreach (var (size, streams) in ThroughputCells)
            {
                var reference = Reference.GetValueOrDefault((size, streams));
                var row = new StringBuilder($"| {DirectionName(direction)} | {size / 1024} KiB | {streams} | {Mb(reference)} |");
                foreach (var p in placements)
                {
                    var cell = Throughput.GetValueOrDefault((p, direction, size, streams));
                    var value = cell.BytesPerSecond;
                    row.Append(CultureInfo.InvariantCulture, $" {Mb(value)} | {Ratio(value, reference)} | {Cores(cell.DaemonCores)} | {Cores(cell.DriverCores)} |");
                }
                Line(row.ToString());
            }
        }
        Line();
        Line("CPU columns: CPU time used per second of the run (1.00 = one core busy the whole time), for the daemon process and for the driver (synthetic guest + host applications).");
        Line("Reference: the same bytes through one connected pair of unix stream sockets per stream, a writer thread and a reader thread that copies every read once more (memcpy into a second buffer).");
    }

    private void PrintLatency()
    {
        if (Latency.Count == 0)
            return;
        Line();
        Line($"## 64-byte request/response round trip (µs, {options.LatencySamples} samples after a warm-up)");
        Line();
        Line("| client → echo | CPUs | p50 | p99 | mean |");
        Line("|---|---|---:|---:|---:|");
        foreach (var ((placement, what), r) in Latency.OrderBy(k => k.Key.Item2).ThenBy(k => k.Key.Item1))
            Line($"| {what} | {Name(placement)} | {r.P50Micros:0.0} | {r.P99Micros:0.0} | {r.MeanMicros:0.0} |");
        if (LatencyReference is { } reference)
            Line($"| reference: unix socket pair, thread → thread echo | {CpuPlacement.Describe(CpuPlacement.AllCpus)} | {reference.P50Micros:0.0} | {reference.P99Micros:0.0} | {reference.MeanMicros:0.0} |");
    }

    private void PrintRate()
    {
        if (Rate.Count == 0)
            return;
        Line();
        Line($"## Connection set-up (connections per second; {options.RateConnections} connections, 16 at a time, each set up and closed by both ends)");
        Line();
        Line("| who connects | CPUs | per second |");
        Line("|---|---|---:|");
        foreach (var ((placement, what), rate) in Rate.OrderBy(k => k.Key.Item2).ThenBy(k => k.Key.Item1))
            Line($"| {what} | {Name(placement)} | {rate:0} |");
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
        {
            return;
        }
        Line();
        Line($"## Daemon garbage collection over {g.Bytes >> 20} MiB ({Name(GcPlacement)}; a quarter each: host→guest and guest→host, 64 KiB and 4 KiB writes, one stream)");
        Line();
        Line("| gen0 | gen1 | gen2 | allocated | packets (RX + TX) | allocated per packet |");
        Line("|---:|---:|---:|---:|---:|---:|");
        Line($"| {g.Delta.Gen0} | {g.Delta.Gen1} | {g.Delta.Gen2} | {g.Delta.AllocatedBytes / 1048576.0:0.0} MiB | {g.Packets} | {g.AllocatedPerPacket:0.0} B |");
    }

    private void PrintTargets()
    {
        Line();
        Line("## Targets (issue 5)");
        Line();
        Line("| target | measured | met |");
        Line("|---|---|---|");
        foreach (var (size, factor) in new[] { (65536, 0.7), (4096, 0.5) })
        {
            foreach (var direction in new[] { Direction.HostToGuest, Direction.GuestToHost })
            {
                var cells = Throughput.Where(t => t.Key.Item2 == direction && t.Key.Size == size && Reference.ContainsKey((size, t.Key.Streams))).ToList();
                if (cells.Count == 0)
                    continue;
                var ratios = cells.Select(c => (c.Key.Item1, c.Key.Streams, Ratio: c.Value.BytesPerSecond / Reference[(size, c.Key.Streams)])).ToList();
                var worst = ratios.Min(r => r.Ratio);
                var text = string.Join(", ", ratios.Select(r => $"{Name(r.Item1)} ×{r.Streams}: {r.Ratio:0.00}"));
                Line($"| {DirectionName(direction)} at {size / 1024} KiB ≥ {factor:0.0}× reference | {text} | {(worst >= factor ? "yes" : "no")} |");
            }
        }
        if (Gc is { } g)
            Line($"| no allocation per packet in steady state | {g.AllocatedPerPacket:0.0} B/packet, gen0/1/2 = {g.Delta.Gen0}/{g.Delta.Gen1}/{g.Delta.Gen2} over {g.Bytes >> 20} MiB | {(g.AllocatedPerPacket < 1 ? "yes" : "no")} |");
        var p50 = Latency.Where(l => l.Key.Item2.StartsWith("host", StringComparison.Ordinal)).Select(l => (l.Key.Item1, l.Value.P50Micros)).ToList();
        if (p50.Count > 0)
            Line($"| 64-byte round trip p50 < 50 µs (host client) | {string.Join(", ", p50.Select(p => $"{Name(p.Item1)}: {p.P50Micros:0.0} µs"))} | {(p50.Max(p => p.P50Micros) < 50 ? "yes" : "no")} |");
        if (Memory is { } m)
            Line($"| ≤ 64 KiB daemon memory per idle connection | {m.RssPerConnection / 1024:0.0} KiB RSS | {(m.RssPerConnection <= 64 * 1024 ? "yes" : "no")} |");
    }

    private static string Name(Placement p) => p == Placement.Pinned ? "pinned" : "unpinned";

    private static string DirectionName(Direction d) => d == Direction.HostToGuest ? "host → guest" : "guest → host";

    private static string Mb(double bytesPerSecond) => bytesPerSecond == 0 ? "–" : (bytesPerSecond / 1e6).ToString("0", CultureInfo.InvariantCulture);

    private static string Cores(double cores) => cores == 0 ? "–" : cores.ToString("0.00", CultureInfo.InvariantCulture);

    private static string Ratio(double value, double reference) => value == 0 || reference == 0 ? "–" : (value / reference).ToString("0.00", CultureInfo.InvariantCulture);

    private void Line(string text = "") => _out.Append(text).Append('\n');
}
