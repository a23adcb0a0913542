using System.Diagnostics;
using System.Net.Sockets;
using Vsock.Testing;
using Vsock.Testing.HostSide;

namespace Vsock.Bench;

internal enum Direction
{
    HostToGuest,
    GuestToHost,
}

/// <summary>
/// Bytes per second, and the CPU time of the daemon and of the driver per second of the run (1.0 = one core busy); of
/// the driver's, the synthetic guest's driver thread and the host application threads (0 where not measured).
/// </summary>
/// <param name="DaemonIdlePollCores">Of the daemon's CPU, its VM loop's polling with nothing to do (the spin before it sleeps): not work.</param>
internal readonly record struct ThroughputResult(double BytesPerSecond, double DaemonCores, double DriverCores, double GuestCores = 0, double HostCores = 0,
    double DaemonIdlePollCores = double.NaN);

/// <summary>A run over several streams: all of them together, each stream's own rate (its bytes over the time it took), and how long it took.</summary>
internal readonly record struct StreamsResult(ThroughputResult Total, double[] PerStreamBytesPerSecond, double Seconds);

/// <summary>Bulk transfer through the daemon: host application ↔ daemon ↔ guest rings, N parallel streams.</summary>
internal static class ThroughputBench
{
    /// <summary>Moves <paramref name="totalBytes"/> (split over the streams) through the first VM: bytes per second and the CPU each side used.</summary>
    public static async Task<ThroughputResult> RunAsync(Session session, Direction direction, int writeSize, int streams, long totalBytes)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var (hosts, guests) = await OpenStreamsAsync(session, session.Vms[0], streams, cts.Token);
        try
        {
            // The daemon's counters before and after (outside the timed part): its loop's idle polling, and with
            // VSOCK_BENCH_COUNTERS=1 how the rings were worked.
            var before = await session.Daemon.SnapshotGcAsync();
            var moved = await MoveAsync(session, hosts, guests, direction, writeSize, totalBytes / streams, cts.Token);
            var after = await session.Daemon.SnapshotGcAsync();
            if (Environment.GetEnvironmentVariable("VSOCK_BENCH_COUNTERS") == "1")
                PrintCounters(direction, writeSize, streams, totalBytes, before, after);
            return moved.Total with { DaemonIdlePollCores = Delta(before, after, "LoopIdlePollMicroseconds") / 1e6 / moved.Seconds };
        }
        finally
        {
            await CloseAsync(hosts, guests);
        }
    }

    /// <summary>
    /// Moves <paramref name="perStream"/> bytes over every stream at once (host writer thread and in-driver
    /// guest sink, or in-driver guest source and host reader thread) and times it.
    /// </summary>
    public static async Task<StreamsResult> MoveAsync(Session session, Socket[] hosts, GuestStream[] guests, Direction direction, int writeSize,
        long perStream, CancellationToken cancellationToken)
    {
        var meter = CpuMeter.Start(session.Daemon);
        var stopwatch = Stopwatch.StartNew();
        var work = new Task<double>[hosts.Length];
        for (var i = 0; i < hosts.Length; i++)
        {
            var host = hosts[i];
            var guest = guests[i];
            work[i] = direction == Direction.HostToGuest
                ? Timed(HostSockets.RunThread("host-send", () => HostSockets.SendBlocking(host, perStream, writeSize), meter), guest.SinkAsync(perStream))
                : Timed(guest.SourceAsync(perStream, writeSize), HostSockets.RunThread("host-receive", () => HostSockets.ReceiveBlocking(host, perStream), meter));
        }
        var seconds = await Task.WhenAll(work).WaitAsync(cancellationToken);
        var cpu = meter.Stop();
        return new StreamsResult(
            new ThroughputResult(perStream * hosts.Length / cpu.Seconds, cpu.Daemon, cpu.Driver, cpu.GuestDriver, cpu.HostApps),
            [.. seconds.Select(s => perStream / s)],
            cpu.Seconds);

        async Task<double> Timed(Task a, Task b)
        {
            await Task.WhenAll(a, b).WaitAsync(cancellationToken);
            return stopwatch.Elapsed.TotalSeconds;
        }
    }

    /// <summary>
    /// VSOCK_BENCH_COUNTERS=1: the daemon's data-path counters over one cell (VM 3), per MiB moved, on stderr:
    /// how the rings were worked (reads, turns, notifications, kicks) and what made the data wait (stalls).
    /// </summary>
    private static void PrintCounters(Direction direction, int writeSize, int streams, long bytes, GcSnapshot before, GcSnapshot after)
    {
        var mib = bytes / (double)(1 << 20);
        long D(string name) => Delta(before, after, name);
        string Per(string name) => $"{name} {D(name) / mib:0.0}";
        Console.Error.WriteLine(
            $"counters {direction} {writeSize / 1024} KiB x{streams} per MiB: {Per("RxReads")} {Per("RxTurns")} {Per("RxPackets")} {Per("RxNotifications")} " +
            $"{Per("TxTurns")} {Per("TxKicks")} {Per("TxPackets")} {Per("TxNotifications")} {Per("CreditStallsTowardGuest")} {Per("HostSocketFull")} " +
            $"{Per("RxBufferStarvation")}; bytes/read {(D("RxReads") > 0 ? D("RxBytes") / (double)D("RxReads") : 0):0}");
    }

    /// <summary>How much one of the first VM's counters moved between two snapshots.</summary>
    private static long Delta(GcSnapshot before, GcSnapshot after, string name) =>
        (after.Counters?.GetValueOrDefault($"{DaemonProcess.FirstCid}.{name}") ?? 0) - (before.Counters?.GetValueOrDefault($"{DaemonProcess.FirstCid}.{name}") ?? 0);

    /// <summary>Host-initiated streams (CONNECT/OK) to <paramref name="vm"/>, each accepted by its guest.</summary>
    public static async Task<(Socket[] Hosts, GuestStream[] Guests)> OpenStreamsAsync(Session session, GuestVm vm, int count, CancellationToken cancellationToken)
    {
        var port = session.NextPort();
        using var listener = vm.Guest.Listen(port);
        var hosts = new Socket[count];
        var guests = new GuestStream[count];
        for (var i = 0; i < count; i++)
        {
            hosts[i] = await Task.Run(() => HostVsock.ConnectBlocking(vm.UdsPath, port), cancellationToken);
            guests[i] = await listener.AcceptAsync(cancellationToken);
        }
        return (hosts, guests);
    }

    public static async Task CloseAsync(Socket[] hosts, GuestStream[] guests)
    {
        foreach (var host in hosts)
            host?.Dispose();
        await Task.WhenAll(guests.Where(g => g is not null).Select(g => g.CloseAsync().AsTask()));
    }
}
