using System.Globalization;

namespace Vsock.Bench;

/// <summary>One row of the targets table: met is null when the run cannot judge it (or it has no target); <see cref="Why"/> says which.</summary>
internal sealed record Target(string Name, string Measured, bool? Met, string Why = "")
{
    public string MetText => Met switch
    {
        true => "yes",
        false => "**no**",
        null => Why,
    };
}

/// <summary>
/// Issue 10's targets, judged from one run's measurements against the same run's references. A target
/// that covers several cells (placements, stream counts) is met only if each of them is.
/// </summary>
internal static class Targets
{
    public const double ThroughputFactor = 0.8;
    public const long GcRunBytes = 1L << 30;
    public const double MaxAllocatedPerPacket = 1.0;
    public const int MemoryConnections = 10_000;
    public const double MaxRssPerConnection = 8 * 1024;
    public const double SetUpPerSecond = 20_000;

    public static IReadOnlyList<Target> Evaluate(Report r)
    {
        var targets = new List<Target>();
        foreach (var direction in Report.Directions)
        {
            foreach (var size in new[] { 4096, 65536 })
                targets.Add(ThroughputRatio(r, direction, size));
        }
        foreach (var direction in Report.Directions)
            targets.Add(BigWritesNotSlower(r, direction));
        foreach (var trip in new[] { RoundTrip.HostClient, RoundTrip.GuestClient })
        {
            foreach (var load in new[] { Load.Idle, Load.Busy })
                targets.Add(RoundTripTarget(r, trip, load));
        }
        targets.AddRange(GcTargets(r));
        targets.Add(MemoryTarget(r));
        foreach (var setUp in new[] { SetUp.HostInitiated, SetUp.GuestInitiated })
            targets.Add(RateTarget(r, setUp));
        targets.Add(MultiVmReport(r));
        return targets;
    }

    private static Target ThroughputRatio(Report r, Direction direction, int size)
    {
        var name = $"{Report.DirectionName(direction)}, {size / 1024} KiB writes, 1 and 4 streams: ≥ {ThroughputFactor:0.0}× reference";
        var cells = r.Throughput.Where(t => t.Key.Item2 == direction && t.Key.Size == size).OrderBy(t => t.Key).ToList();
        if (cells.Count == 0)
            return new Target(name, "–", null, "not measured");
        if (!cells.All(c => r.Reference.ContainsKey((size, c.Key.Streams))))
            return new Target(name, "–", null, "not measured (no reference: `--only` without `reference`)");
        var ratios = cells.Select(c => (c.Key.Item1, c.Key.Streams, Ratio: c.Value.BytesPerSecond / r.Reference[(size, c.Key.Streams)])).ToList();
        var text = string.Join("; ", ratios.GroupBy(x => x.Item1).Select(g =>
            $"{Report.Name(g.Key)} " + string.Join(", ", g.Select(x => $"×{x.Streams} {x.Ratio:0.00}"))));
        return new Target(name, text, ratios.All(x => x.Ratio >= ThroughputFactor));
    }

    private static Target BigWritesNotSlower(Report r, Direction direction)
    {
        var name = $"{Report.DirectionName(direction)}: 64 KiB writes no slower than 4 KiB (MB/s, 64 KiB vs 4 KiB)";
        var pairs = new List<(Placement Placement, int Streams, double Big, double Small)>();
        foreach (var ((placement, d, size, streams), big) in r.Throughput.OrderBy(t => t.Key))
        {
            if (d == direction && size == 65536 && r.Throughput.TryGetValue((placement, d, 4096, streams), out var small))
                pairs.Add((placement, streams, big.BytesPerSecond, small.BytesPerSecond));
        }
        if (pairs.Count == 0)
            return new Target(name, "–", null, "not measured");
        var text = string.Join("; ", pairs.GroupBy(p => p.Placement).Select(g =>
            $"{Report.Name(g.Key)} " + string.Join(", ", g.Select(p => $"×{p.Streams} {Report.Mb(p.Big)} vs {Report.Mb(p.Small)}"))));
        return new Target(name, text, pairs.All(p => p.Big >= p.Small));
    }

    private static Target RoundTripTarget(Report r, RoundTrip trip, Load load)
    {
        var name = $"64-byte round trip p50 ≤ the reference's, {Report.RoundTripName(trip)}, {Report.Name(load)}";
        var values = new List<(Placement Placement, double P50, double Reference)>();
        foreach (var placement in Report.Placements)
        {
            if (r.Latency.TryGetValue((placement, load, trip), out var measured) && r.Latency.TryGetValue((placement, load, RoundTrip.Reference), out var reference))
                values.Add((placement, measured.P50Micros, reference.P50Micros));
        }
        if (values.Count == 0)
            return new Target(name, "–", null, load == Load.Busy ? "not measured (the busy variant runs in the unpinned placement, with 2 CPUs or more)" : "not measured");
        var text = string.Join("; ", values.Select(v => $"{Report.Name(v.Placement)} {v.P50:0.0} vs {v.Reference:0.0} µs"));
        return new Target(name, text, values.All(v => v.P50 <= v.Reference));
    }

    private static IEnumerable<Target> GcTargets(Report r)
    {
        const string collections = "0 GC collections over 1 GiB";
        const string perPacket = "no allocation per packet (< 1 B allocated per packet over 1 GiB; one object per packet is ≥ 24 B)";
        if (r.Gc is not { } g)
        {
            yield return new Target(collections, "–", null, "not measured");
            yield return new Target(perPacket, "–", null, "not measured");
            yield break;
        }
        var count = g.Delta.Gen0 + g.Delta.Gen1 + g.Delta.Gen2;
        var shortRun = g.Bytes < GcRunBytes;
        var shortWhy = $"not measured (a {g.Bytes >> 20} MiB run)";
        yield return new Target(collections, $"gen0/1/2 = {g.Delta.Gen0}/{g.Delta.Gen1}/{g.Delta.Gen2} over {g.Bytes >> 20} MiB ({Report.Name(r.GcPlacement)})",
            count > 0 ? false : shortRun ? null : true, shortWhy);
        yield return new Target(perPacket, $"{g.AllocatedPerPacket:0.0} B/packet ({g.Delta.AllocatedBytes} B over {g.Packets} packets)",
            shortRun ? null : g.AllocatedPerPacket < MaxAllocatedPerPacket, shortWhy);
    }

    private static Target MemoryTarget(Report r)
    {
        const string name = "≤ 8 KiB RSS per idle connection at 10,000 connections";
        if (r.Memory is not { } m)
            return new Target(name, "–", null, "not measured");
        var text = $"{m.RssPerConnection / 1024:0.0} KiB at {m.Connections} connections ({Report.Name(r.MemoryPlacement)})";
        return m.Connections < MemoryConnections
            ? new Target(name, text, null, $"not measured ({m.Connections} connections)")
            : new Target(name, text, m.RssPerConnection <= MaxRssPerConnection);
    }

    private static Target RateTarget(Report r, SetUp setUp)
    {
        var name = $"connection set-up ≥ 20,000/s, {Report.SetUpName(setUp)}, {Report.RateConcurrency} at a time";
        var values = Report.Placements.Where(p => r.Rate.ContainsKey((p, setUp))).Select(p => (Placement: p, Rate: r.Rate[(p, setUp)])).ToList();
        if (values.Count == 0)
            return new Target(name, "–", null, "not measured");
        var text = string.Join("; ", values.Select(v => $"{Report.Name(v.Placement)} {v.Rate.PerSecond.ToString("0", CultureInfo.InvariantCulture)}/s"));
        return new Target(name, text, values.All(v => v.Rate.PerSecond >= SetUpPerSecond));
    }

    private static Target MultiVmReport(Report r)
    {
        const string name = "four VMs in one daemon streaming at once, against one VM (64 KiB writes, aggregate MB/s)";
        if (r.MultiVm.Count == 0)
            return new Target(name, "–", null, "not measured; no target");
        var text = string.Join("; ", r.MultiVm.OrderBy(m => m.Key).Select(m =>
            $"{Report.DirectionName(m.Key.Item2)} {Report.Name(m.Key.Item1)} {Report.Mb(m.Value.All.BytesPerSecond)} vs {Report.Mb(m.Value.One.BytesPerSecond)} (×{Report.Ratio(m.Value.All.BytesPerSecond, m.Value.One.BytesPerSecond)})"));
        return new Target(name, text, null, "no target (report only)");
    }
}
