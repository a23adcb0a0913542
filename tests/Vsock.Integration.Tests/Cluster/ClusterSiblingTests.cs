using System.Diagnostics;
using Vsock.Testing;
using Xunit.Abstractions;

namespace Vsock.Integration.Tests.Cluster;

/// <summary>
/// Sibling VMs on different cluster nodes: two and three daemon processes on 127.0.0.1 (the launcher, as users run
/// it), each VM played by a synthetic guest. Streams cross nodes with the same semantics as local siblings; the
/// registry refuses what it must; a node that dies or freezes costs the others their streams with it (RST, within
/// 10 s) and nothing else; a node that comes back is reachable again. Times are generous: the machine is small and
/// shared, and each node is a whole .NET process.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterSiblingTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Formation = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan Transfer = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ResetLimit = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Guests_on_two_nodes_stream_4MiB_each_way_with_checksums()
    {
        await WithTwoNodesAsync(async (a, b) =>
        {
            await using var g3 = SyntheticGuest.Connect(a.SocketOf(3));
            await using var g4 = SyntheticGuest.Connect(b.SocketOf(4));
            using var cts = new CancellationTokenSource(Transfer);
            var (client, server) = await OpenAsync(g3, g4, 5000, cts.Token);
            Assert.Equal(3ul, server.PeerCid);

            var up = TestPattern.RandomBytes(4 << 20, 11);
            var down = TestPattern.RandomBytes(4 << 20, 12);
            var clock = Stopwatch.StartNew();
            var write1 = Task.Run(async () => { await client.WriteAsync(up, cts.Token); client.ShutdownWrite(); });
            var write2 = Task.Run(async () => { await server.WriteAsync(down, cts.Token); server.ShutdownWrite(); });
            var read1 = server.ReadToEndAsync(cts.Token);
            var read2 = client.ReadToEndAsync(cts.Token);
            await Task.WhenAll(write1, write2);
            Assert.Equal(Scenario.Hash(up), Scenario.Hash(await read1));
            Assert.Equal(Scenario.Hash(down), Scenario.Hash(await read2));
            output.WriteLine($"4 MiB each way between nodes in {clock.Elapsed.TotalMilliseconds:0} ms");
            Scenario.AssertClean(g3);
            Scenario.AssertClean(g4);
        });
    }

    [Fact]
    public async Task A_sibling_on_another_node_without_a_common_group_is_refused_at_once()
    {
        var ports = FreePorts.Take(2);
        await using var a = await ClusterNode.StartAsync("a", ports[0], ports, new NodeVm(3, "red"));
        await using var b = await ClusterNode.StartAsync("b", ports[1], ports, new NodeVm(4, "blue"), new NodeVm(5, "red"));
        await RunAsync([a, b], async () =>
        {
            await MeshAsync(a, b);
            await using var g3 = SyntheticGuest.Connect(a.SocketOf(3));
            await using var g4 = SyntheticGuest.Connect(b.SocketOf(4));
            await using var g5 = SyntheticGuest.Connect(b.SocketOf(5));
            using var cts = new CancellationTokenSource(Transfer);
            using var listener = g3.Listen(5000);

            // 5 shares "red" with 3: reachable (and so both nodes know both CIDs).
            var accept = listener.AcceptAsync(cts.Token);
            await ConnectEventuallyAsync(g5, 3, 5000, cts.Token);
            Assert.Equal(5ul, (await accept).PeerCid);

            var clock = Stopwatch.StartNew();
            await Assert.ThrowsAsync<GuestConnectionRefusedException>(() => g4.ConnectAsync(3, 5000, ConnectTimeout, cts.Token));
            output.WriteLine($"refused after {clock.Elapsed.TotalMilliseconds:0.0} ms");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"refusal took {clock.Elapsed}");
            // The reason, in the daemon's log (which reaches us through a pipe, a moment after the RST).
            await b.WaitForLogAsync($"CID 4 and CID 3 (on {a.Address}) share no group", TimeSpan.FromSeconds(10));
            Assert.Equal(0, listener.PendingCount);
        });
    }

    [Fact]
    public async Task A_cid_already_served_on_another_node_is_refused_for_the_later_vm_and_never_misrouted()
    {
        var ports = FreePorts.Take(2);
        await using var a = await ClusterNode.StartAsync("a", ports[0], ports, new NodeVm(3));
        await a.WaitForLogAsync($"Leader is moving node [{a.Address}] to [Up]", Formation); // a is up before b starts: a is the older node
        await using var b = await ClusterNode.StartAsync("b", ports[1], ports, new NodeVm(3), new NodeVm(4));
        await RunAsync([a, b], async () =>
        {
            await b.WaitForLogAsync("guest CID 3 is refused in the cluster", Formation);
            await a.WaitForLogAsync($"CID 3 is configured on more than one node: served by {a.Address}, refused on {b.Address}", Formation);
            await a.WaitForLogAsync(ClusterNode.Reachable(4, b), Formation);
            await b.WaitForLogAsync(ClusterNode.Reachable(3, a), Formation);

            await using var a3 = SyntheticGuest.Connect(a.SocketOf(3));
            await using var b3 = SyntheticGuest.Connect(b.SocketOf(3));
            await using var b4 = SyntheticGuest.Connect(b.SocketOf(4));
            using var cts = new CancellationTokenSource(Transfer);
            using var onA = a3.Listen(5000);
            using var onB = b3.Listen(5000);

            // B's CID 4 asks for CID 3: the VM on A answers, never the refused one next to it.
            var accept = onA.AcceptAsync(cts.Token);
            var stream = await ConnectEventuallyAsync(b4, 3, 5000, cts.Token);
            var accepted = await accept;
            Assert.Equal(4ul, accepted.PeerCid);
            await stream.WriteAsync(TestPattern.RandomBytes(1000, 5), cts.Token);
            Assert.Equal(TestPattern.RandomBytes(1000, 5), await accepted.ReadExactlyAsync(1000, cts.Token));
            Assert.Equal(0, onB.PendingCount);

            // The refused VM reaches no sibling, at once.
            var clock = Stopwatch.StartNew();
            await Assert.ThrowsAsync<GuestConnectionRefusedException>(() => b3.ConnectAsync(4, 5000, ConnectTimeout, cts.Token));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"refusal took {clock.Elapsed}");
            Assert.Contains("guest CID 3 is refused in the cluster", b.Log);
            Scenario.AssertClean(b4);
        });
    }

    [Fact]
    public async Task When_a_vmm_on_one_node_goes_away_the_sibling_on_the_other_node_sees_its_streams_reset()
    {
        await WithTwoNodesAsync(async (a, b) =>
        {
            await using var g3 = SyntheticGuest.Connect(a.SocketOf(3));
            var g4 = SyntheticGuest.Connect(b.SocketOf(4));
            using var cts = new CancellationTokenSource(Transfer);
            var (client, source) = await StreamAsync(g3, g4, cts.Token);

            var clock = Stopwatch.StartNew();
            g4.Disconnect();
            await WaitUntilAsync(() => client.IsPeerReset, ResetLimit, "the stream with the vanished guest was not reset");
            output.WriteLine($"VMM gone on the other node → RST after {clock.Elapsed.TotalMilliseconds:0} ms");
            await EndsAsync(source);
            await DisposeQuietlyAsync(g4);

            // A fresh VMM on the same socket is a fresh guest, reachable again; the node never left.
            await using var again = SyntheticGuest.Connect(b.SocketOf(4));
            var (stream, server) = await OpenAsync(g3, again, 5001, cts.Token);
            await stream.WriteAsync(TestPattern.RandomBytes(1000, 3), cts.Token);
            Assert.Equal(TestPattern.RandomBytes(1000, 3), await server.ReadExactlyAsync(1000, cts.Token));
        });
    }

    [Fact]
    public async Task A_node_killed_mid_stream_resets_the_other_guests_stream_within_10s_and_new_connections_are_refused()
    {
        await WithTwoNodesAsync(async (a, b) =>
        {
            await using var g3 = SyntheticGuest.Connect(a.SocketOf(3));
            var g4 = SyntheticGuest.Connect(b.SocketOf(4));
            using var cts = new CancellationTokenSource(Transfer);
            var (client, source) = await StreamAsync(g3, g4, cts.Token);

            var clock = Stopwatch.StartNew();
            await b.KillAsync();
            await WaitUntilAsync(() => client.IsPeerReset, ResetLimit, "the stream to the killed node was not reset");
            var reset = clock.Elapsed;
            output.WriteLine($"SIGKILL → RST on the surviving guest after {reset.TotalMilliseconds:0} ms");
            await EndsAsync(source);

            clock.Restart();
            await Assert.ThrowsAsync<GuestConnectionRefusedException>(() => g3.ConnectAsync(4, 5000, ConnectTimeout, cts.Token));
            output.WriteLine($"a new connection to the dead node's CID refused after {clock.Elapsed.TotalMilliseconds:0.0} ms");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"refusal took {clock.Elapsed}");
            await DisposeQuietlyAsync(g4);
        });
    }

    [Fact]
    public async Task A_node_restarted_at_once_on_the_same_address_rejoins_and_its_vms_are_reachable_again()
    {
        await WithTwoNodesAsync(async (a, b) =>
        {
            await using var g3 = SyntheticGuest.Connect(a.SocketOf(3));
            var g4 = SyntheticGuest.Connect(b.SocketOf(4));
            using var cts = new CancellationTokenSource(Transfer);
            var (client, source) = await StreamAsync(g3, g4, cts.Token);

            var seen = a.Count(ClusterNode.Reachable(4, b));
            await b.KillAsync();
            await DisposeQuietlyAsync(g4);
            var clock = Stopwatch.StartNew();
            await b.RestartAsync(); // same port: it must bind again at once
            await a.WaitForLogAsync(ClusterNode.Reachable(4, b), Formation, before: seen);
            output.WriteLine($"restarted node reachable again {clock.Elapsed.TotalMilliseconds:0} ms after its restart");
            Assert.True(client.IsPeerReset);
            await EndsAsync(source);

            await using var again = SyntheticGuest.Connect(b.SocketOf(4));
            var (stream, server) = await OpenAsync(g3, again, 5001, cts.Token);
            var data = TestPattern.RandomBytes(1 << 20, 21);
            var read = server.ReadToEndAsync(cts.Token);
            await stream.WriteAsync(data, cts.Token);
            stream.ShutdownWrite();
            Assert.Equal(Scenario.Hash(data), Scenario.Hash(await read));
            Scenario.AssertClean(g3);
        });
    }

    [Fact]
    public async Task A_frozen_node_is_found_by_the_failure_detector_and_reachable_again_when_it_thaws()
    {
        await WithTwoNodesAsync(async (a, b) =>
        {
            await using var g3 = SyntheticGuest.Connect(a.SocketOf(3));
            await using var g4 = SyntheticGuest.Connect(b.SocketOf(4));
            using var cts = new CancellationTokenSource(Transfer);
            var (client, source) = await StreamAsync(g3, g4, cts.Token);

            var seen = a.Count(ClusterNode.Reachable(4, b));
            var clock = Stopwatch.StartNew();
            b.Freeze(); // its TCP connections stay open: only the failure detector can tell
            try
            {
                await WaitUntilAsync(() => client.IsPeerReset, ResetLimit, "the stream to the frozen node was not reset");
                output.WriteLine($"SIGSTOP → RST on the other guest after {clock.Elapsed.TotalMilliseconds:0} ms");
                await EndsAsync(source);
                clock.Restart();
                await Assert.ThrowsAsync<GuestConnectionRefusedException>(() => g3.ConnectAsync(4, 5000, ConnectTimeout, cts.Token));
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"refusal took {clock.Elapsed}");
            }
            finally
            {
                b.Thaw();
            }

            clock.Restart();
            await a.WaitForLogAsync(ClusterNode.Reachable(4, b), Formation, before: seen);
            output.WriteLine($"thawed node reachable again after {clock.Elapsed.TotalMilliseconds:0} ms");
            var (stream, server) = await OpenAsync(g3, g4, 5001, cts.Token);
            await stream.WriteAsync(TestPattern.RandomBytes(4096, 31), cts.Token);
            Assert.Equal(TestPattern.RandomBytes(4096, 31), await server.ReadExactlyAsync(4096, cts.Token));
        });
    }

    /// <summary>
    /// Three nodes; 3 streams to 4 and to 5 at once. Node C (CID 5) is killed: only the stream with 5 ends; the one
    /// with 4 finishes its transfer intact, and 4 learns of 5's loss too.
    /// </summary>
    [Fact]
    public async Task Three_nodes_a_killed_node_costs_only_the_streams_with_its_vms()
    {
        var ports = FreePorts.Take(3);
        await using var a = await ClusterNode.StartAsync("a", ports[0], ports, new NodeVm(3));
        await using var b = await ClusterNode.StartAsync("b", ports[1], ports, new NodeVm(4));
        await using var c = await ClusterNode.StartAsync("c", ports[2], ports, new NodeVm(5));
        await RunAsync([a, b, c], async () =>
        {
            await MeshAsync(a, b, c);
            await using var g3 = SyntheticGuest.Connect(a.SocketOf(3));
            await using var g4 = SyntheticGuest.Connect(b.SocketOf(4));
            var g5 = SyntheticGuest.Connect(c.SocketOf(5));
            using var cts = new CancellationTokenSource(Transfer);
            var (toFive, source) = await StreamAsync(g3, g5, cts.Token);
            var (fourToFive, source45) = await StreamAsync(g4, g5, cts.Token, port: 5001);

            var (toFour, atFour) = await OpenAsync(g3, g4, 6000, cts.Token);
            var data = TestPattern.RandomBytes(2 << 20, 41);
            var write = Task.Run(async () => { await toFour.WriteAsync(data, cts.Token); toFour.ShutdownWrite(); });
            var read = atFour.ReadToEndAsync(cts.Token);

            var clock = Stopwatch.StartNew();
            await c.KillAsync();
            await WaitUntilAsync(() => toFive.IsPeerReset && fourToFive.IsPeerReset, ResetLimit, "the streams to the killed node were not reset");
            output.WriteLine($"SIGKILL → RST on both other nodes' guests after {clock.Elapsed.TotalMilliseconds:0} ms");
            await EndsAsync(source);
            await EndsAsync(source45);

            await write;
            Assert.Equal(Scenario.Hash(data), Scenario.Hash(await read));
            Assert.False(toFour.IsPeerReset);
            await Assert.ThrowsAsync<GuestConnectionRefusedException>(() => g4.ConnectAsync(5, 5000, ConnectTimeout, cts.Token));
            Scenario.AssertClean(g3);
            Scenario.AssertClean(g4);
            await DisposeQuietlyAsync(g5);
        });
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>Nodes a (CID 3) and b (CID 4), one group, each seeing the other's VM, then the body; see <see cref="RunAsync"/>.</summary>
    private async Task WithTwoNodesAsync(Func<ClusterNode, ClusterNode, Task> body)
    {
        var ports = FreePorts.Take(2);
        await using var a = await ClusterNode.StartAsync("a", ports[0], ports, new NodeVm(3));
        await using var b = await ClusterNode.StartAsync("b", ports[1], ports, new NodeVm(4));
        await RunAsync([a, b], async () =>
        {
            await MeshAsync(a, b);
            await body(a, b);
        });
    }

    /// <summary>Runs the body; a failure carries every node's log.</summary>
    private async Task RunAsync(ClusterNode[] nodes, Func<Task> body)
    {
        try
        {
            await body();
        }
        catch (Exception e)
        {
            var logs = string.Concat(nodes.Select(n => n.Describe()));
            output.WriteLine(logs);
            throw new Xunit.Sdk.XunitException($"{e}\n{logs}");
        }
    }

    /// <summary>Every node has every other node's VMs in its view.</summary>
    private static async Task MeshAsync(params ClusterNode[] nodes)
    {
        foreach (var node in nodes)
        {
            foreach (var other in nodes.Where(o => o != node))
            {
                foreach (var vm in other.Vms)
                    await node.WaitForLogAsync(ClusterNode.Reachable(vm.Cid, other), Formation);
            }
        }
    }

    /// <summary>
    /// Connects, retrying a refusal for a while: the two nodes' replicas of the registry converge independently, so
    /// the target's node may hear of the source a moment after the source's node heard of the target.
    /// </summary>
    private static async Task<GuestStream> ConnectEventuallyAsync(SyntheticGuest guest, ulong cid, uint port, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await guest.ConnectAsync(cid, port, ConnectTimeout, cancellationToken);
            }
            catch (GuestConnectionRefusedException) when (clock.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(200, cancellationToken);
            }
        }
    }

    /// <summary>A stream from <paramref name="from"/> to a listener of <paramref name="to"/> on <paramref name="port"/>: both ends.</summary>
    private static async Task<(GuestStream Client, GuestStream Server)> OpenAsync(SyntheticGuest from, SyntheticGuest to, uint port, CancellationToken cancellationToken)
    {
        using var listener = to.Listen(port);
        var accept = listener.AcceptAsync(cancellationToken);
        var client = await ConnectEventuallyAsync(from, to.GuestCid, port, cancellationToken);
        return (client, await accept);
    }

    /// <summary>A stream from <paramref name="from"/> to <paramref name="to"/> with the drivers streaming into it without end.</summary>
    private static async Task<(GuestStream Client, Task Source)> StreamAsync(SyntheticGuest from, SyntheticGuest to, CancellationToken cancellationToken, uint port = 5000)
    {
        var (client, server) = await OpenAsync(from, to, port, cancellationToken);
        _ = server.SinkAsync(long.MaxValue);
        var source = client.SourceAsync(long.MaxValue, 64 * 1024);
        var before = to.Statistics.PayloadBytesReceived;
        await WaitUntilAsync(() => to.Statistics.PayloadBytesReceived - before > 1 << 20, TimeSpan.FromSeconds(30), "no data flowed between the nodes");
        return (client, source);
    }

    /// <summary>The in-driver source ends (with whatever error a reset stream gives) rather than hanging.</summary>
    private static async Task EndsAsync(Task source)
    {
        var finished = await Task.WhenAny(source, Task.Delay(TimeSpan.FromSeconds(10)));
        Assert.True(finished == source, "the writer on a reset stream hangs");
        _ = source.Exception; // observed: a reset stream fails its writer
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string problem)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"{problem} within {timeout.TotalSeconds:0} s");
            await Task.Delay(5);
        }
    }

    /// <summary>A guest whose daemon was killed: its VMM connection is gone, whatever its dispose says about it.</summary>
    private static async Task DisposeQuietlyAsync(SyntheticGuest guest)
    {
        try
        {
            await guest.DisposeAsync();
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or TimeoutException or ObjectDisposedException)
        {
        }
    }
}
