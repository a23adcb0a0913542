using System.Diagnostics;
using Vsock.Testing;

namespace Vsock.Bench;

/// <summary>
/// Connection set-up and tear-down rate: <c>count</c> streams, at most <c>concurrency</c> at once, each
/// established (host: CONNECT → OK; guest: REQUEST → RESPONSE) and then closed by both ends.
/// </summary>
internal static class ConnectionRateBench
{
    public static async Task<double> HostInitiatedAsync(Session session, int count, int concurrency)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var port = session.NextPort();
        using var listener = session.Guest.Listen(port);
        // The guest application accepts and closes each stream (the host closes its end too).
        var acceptor = Task.Run(async () =>
        {
            var closes = new List<Task>();
            for (var i = 0; i < count; i++)
            {
                var stream = await listener.AcceptAsync(cts.Token);
                closes.Add(stream.CloseAsync().AsTask());
            }
            await Task.WhenAll(closes);
        });
        var stopwatch = Stopwatch.StartNew();
        await ForEachConcurrently(count, concurrency, async _ =>
        {
            using var host = await HostSockets.ConnectAsync(session.Daemon.UdsPath, port, cts.Token);
        });
        await acceptor;
        stopwatch.Stop();
        return count / stopwatch.Elapsed.TotalSeconds;
    }

    public static async Task<double> GuestInitiatedAsync(Session session, int count, int concurrency)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var port = session.NextPort();
        using var listener = HostSockets.Listen(session.Daemon.UdsPath, port, backlog: 1024);
        // The host application accepts and closes each connection.
        var acceptor = Task.Run(async () =>
        {
            for (var i = 0; i < count; i++)
            {
                var host = await listener.AcceptAsync(cts.Token);
                host.Dispose();
            }
        });
        var stopwatch = Stopwatch.StartNew();
        await ForEachConcurrently(count, concurrency, async _ =>
        {
            var stream = await session.Guest.ConnectAsync(2, port, TimeSpan.FromSeconds(10), cts.Token);
            await stream.CloseAsync();
        });
        await acceptor;
        stopwatch.Stop();
        return count / stopwatch.Elapsed.TotalSeconds;
    }

    private static async Task ForEachConcurrently(int count, int concurrency, Func<int, Task> body)
    {
        var next = -1;
        var workers = Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
                await body(i);
        });
        await Task.WhenAll(workers);
    }
}
