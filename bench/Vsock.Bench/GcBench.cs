namespace Vsock.Bench;

/// <param name="Scrapes">Scrapes of the daemon's /metrics during the run (0 without <c>--metrics-scrape-ms</c>); their allocations count too.</param>
internal readonly record struct GcResult(long Bytes, long Packets, GcSnapshot Delta, long Scrapes)
{
    public double AllocatedPerPacket => Packets == 0 ? 0 : (double)Delta.AllocatedBytes / Packets;
}

/// <summary>
/// The daemon's garbage collections over a long run: a GC snapshot before and after moving the
/// bytes through warm streams (a quarter each: host→guest and guest→host, 64 KiB and 4 KiB writes).
/// Packets are counted on the guest's side of the rings (every RX and TX packet, control included).
/// </summary>
internal static class GcBench
{
    public static async Task<GcResult> RunAsync(Session session, long totalBytes)
    {
        var quarter = totalBytes / 4;
        // Warm-up: every path once, so the snapshot does not count JIT or pool growth.
        foreach (var (direction, size) in Cells)
            await ThroughputBench.RunAsync(session, direction, size, 1, 16L << 20);
        var statsBefore = session.Guest.Statistics;
        var scrapesBefore = session.Daemon.Scraper?.Scrapes ?? 0;
        var before = await session.Daemon.SnapshotGcAsync();
        foreach (var (direction, size) in Cells)
            await ThroughputBench.RunAsync(session, direction, size, 1, quarter);
        var after = await session.Daemon.SnapshotGcAsync();
        var statsAfter = session.Guest.Statistics;
        var packets = statsAfter.PacketsSent - statsBefore.PacketsSent + statsAfter.PacketsReceived - statsBefore.PacketsReceived;
        var scrapes = (session.Daemon.Scraper?.Scrapes ?? 0) - scrapesBefore;
        return new GcResult(quarter * 4, packets, after - before, scrapes);
    }

    private static readonly (Direction, int)[] Cells =
    [
        (Direction.HostToGuest, 64 * 1024),
        (Direction.GuestToHost, 64 * 1024),
        (Direction.HostToGuest, 4 * 1024),
        (Direction.GuestToHost, 4 * 1024),
    ];
}
