using System.Net.Sockets;
using Vsock.Testing;
using Vsock.Testing.HostSide;

namespace Vsock.Bench;

internal readonly record struct IdleMemoryResult(int Connections, long RssBefore, long RssAfter, GcSnapshot HeapBefore, GcSnapshot HeapAfter, int FdsAfter, long FdLimit)
{
    public double RssPerConnection => (double)(RssAfter - RssBefore) / Connections;
    public double HeapPerConnection => (double)(HeapAfter.HeapBytes - HeapBefore.HeapBytes) / Connections;
}

/// <summary>
/// The daemon's memory with many idle host-initiated streams on one VM: RSS (and managed heap)
/// before and after opening them, with a fresh daemon so nothing else is in it.
/// </summary>
internal static class IdleMemoryBench
{
    public static async Task<IdleMemoryResult> RunAsync(Session session, int connections, int concurrency)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var daemon = session.Daemon;
        // One stream opened and closed first, so code paths are loaded and JIT-compiled before "before".
        var (warmHosts, warmGuests) = await ThroughputBench.OpenStreamsAsync(session, session.Vms[0], 1, cts.Token);
        await ThroughputBench.CloseAsync(warmHosts, warmGuests);
        await Task.Delay(1000);
        var rssBefore = daemon.ReadRss();
        var heapBefore = await daemon.SnapshotGcAsync();

        var port = session.NextPort();
        using var listener = session.Guest.Listen(port);
        var hosts = new Socket[connections];
        var guests = new GuestStream[connections];
        var acceptor = Task.Run(async () =>
        {
            for (var i = 0; i < connections; i++)
                guests[i] = await listener.AcceptAsync(cts.Token);
        });
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < connections)
                hosts[i] = await HostVsock.ConnectAsync(daemon.UdsPath, port, cts.Token);
        }));
        await acceptor;
        await Task.Delay(2000); // let the daemon's mailboxes and pending receives settle
        var rssAfter = daemon.ReadRss();
        if (int.TryParse(Environment.GetEnvironmentVariable("VSOCK_BENCH_IDLE_PAUSE"), out var pause))
        {
            // A window to look inside the daemon with every connection open (dotnet-gcdump, /proc/PID/smaps).
            Console.Error.WriteLine($"idle memory: {connections} connections open in daemon {daemon.Pid}; pausing {pause} s");
            await Task.Delay(TimeSpan.FromSeconds(pause));
        }
        var heapAfter = await daemon.SnapshotGcAsync();
        var fds = daemon.CountOpenFds();

        foreach (var host in hosts)
            host.Dispose();
        foreach (var guest in guests)
            guest.Reset();
        return new IdleMemoryResult(connections, rssBefore, rssAfter, heapBefore, heapAfter, fds, daemon.ReadOpenFileLimit());
    }
}
