using System.Diagnostics;
using Vsock.Testing;
using Xunit.Abstractions;

namespace Vsock.Integration.Tests.Cluster;

/// <summary>
/// The figures of docs/BENCHMARKS.md "Sibling VMs across nodes": one stream's throughput (64 KiB writes) and the
/// 64-byte round trip between two synthetic guests, as local siblings (both VMs in one daemon, no cluster) and as
/// siblings on two cluster nodes (two daemon processes on 127.0.0.1). The guests' applications run inside their
/// driver threads (in-driver source, sink, echo and ping-pong), so the figures are the daemons' and the hop's.
/// Nothing is pinned and the machine is shared: the test only checks that data moves and prints the figures.
///
///   dotnet test tests/Vsock.Integration.Tests -c Release --filter "FullyQualifiedName~ClusterSiblingBenchmark" --logger "console;verbosity=detailed"
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterSiblingBenchmark(ITestOutputHelper output)
{
    private const long StreamBytes = 256L << 20;
    private const int RoundTrips = 5000;
    private const int RoundTripSize = 64;

    [Fact]
    public async Task Sibling_throughput_and_round_trip_local_and_across_nodes()
    {
        await using (var local = await ClusterNode.StartLocalAsync("local", new NodeVm(3), new NodeVm(4)))
            await MeasureAsync("local siblings (one daemon)", local, local);

        var ports = FreePorts.Take(2);
        await using var a = await ClusterNode.StartAsync("a", ports[0], ports, new NodeVm(3));
        await using var b = await ClusterNode.StartAsync("b", ports[1], ports, new NodeVm(4));
        await a.WaitForLogAsync(ClusterNode.Reachable(4, b), TimeSpan.FromSeconds(90));
        await b.WaitForLogAsync(ClusterNode.Reachable(3, a), TimeSpan.FromSeconds(90));
        await MeasureAsync("siblings on two cluster nodes", a, b);
    }

    private async Task MeasureAsync(string name, ClusterNode nodeOf3, ClusterNode nodeOf4)
    {
        // Linux's default receive buffer (buf_alloc 256 KiB), then a larger one: the credit window bounds what is
        // in flight, so a stream's rate is about window / round trip, and the round trip across nodes is longer.
        foreach (var bufAlloc in new[] { 256u << 10, 2u << 20 })
        {
            var options = new SyntheticGuestOptions { RecordReceived = false, BufAlloc = bufAlloc };
            await using var g3 = SyntheticGuest.Connect(nodeOf3.SocketOf(3), options);
            await using var g4 = SyntheticGuest.Connect(nodeOf4.SocketOf(4), options);
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));

            // Warm-up (JIT, pools), then one stream 3 → 4.
            await StreamAsync(g3, g4, 5000, 32L << 20, cts.Token);
            var seconds = await StreamAsync(g3, g4, 5001, StreamBytes, cts.Token);
            output.WriteLine($"{name}: 1 stream, 64 KiB writes, buf_alloc {bufAlloc >> 10} KiB: {StreamBytes / (1024.0 * 1024.0) / seconds:0} MiB/s");
            if (bufAlloc == 256u << 10)
                await RoundTripAsync(name, g3, g4, cts.Token);
            Scenario.AssertClean(g3);
            Scenario.AssertClean(g4);
        }
    }

    private async Task RoundTripAsync(string name, SyntheticGuest g3, SyntheticGuest g4, CancellationToken cancellationToken)
    {
        using var listener = g4.Listen(5002);
        var accept = listener.AcceptAsync(cancellationToken);
        var client = await ConnectAsync(g3, 4, 5002, cancellationToken);
        var server = await accept;
        var echo = server.EchoAsync((long)(RoundTrips + 500) * RoundTripSize);
        await client.PingPongAsync(500, RoundTripSize); // warm-up
        var ticks = await client.PingPongAsync(RoundTrips, RoundTripSize);
        await echo.WaitAsync(cancellationToken);
        var micros = ticks.Select(t => t * 1_000_000.0 / Stopwatch.Frequency).Order().ToArray();
        output.WriteLine($"{name}: 64-byte round trip p50 {Percentile(micros, 50):0} µs, p99 {Percentile(micros, 99):0} µs ({RoundTrips} samples)");
    }

    private static async Task<double> StreamAsync(SyntheticGuest from, SyntheticGuest to, uint port, long bytes, CancellationToken cancellationToken)
    {
        using var listener = to.Listen(port);
        var accept = listener.AcceptAsync(cancellationToken);
        var client = await ConnectAsync(from, to.GuestCid, port, cancellationToken);
        var server = await accept;
        var clock = Stopwatch.StartNew();
        var sink = server.SinkAsync(bytes);
        await client.SourceAsync(bytes, 64 * 1024).WaitAsync(cancellationToken);
        await sink.WaitAsync(cancellationToken);
        var seconds = clock.Elapsed.TotalSeconds;
        await client.CloseAsync();
        return seconds;
    }

    private static async Task<GuestStream> ConnectAsync(SyntheticGuest guest, ulong cid, uint port, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await guest.ConnectAsync(cid, port, TimeSpan.FromSeconds(5), cancellationToken);
            }
            catch (GuestConnectionRefusedException) when (attempt < 100)
            {
                await Task.Delay(200, cancellationToken); // the other node's replica may be a moment behind
            }
        }
    }

    private static double Percentile(double[] sorted, int percent) => sorted[Math.Min(sorted.Length - 1, sorted.Length * percent / 100)];
}
