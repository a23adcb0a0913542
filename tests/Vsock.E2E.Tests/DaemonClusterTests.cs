using System.Diagnostics;
using Vsock.E2E.Tests.Rig;

namespace Vsock.E2E.Tests;

/// <summary>
/// Sibling VMs across cluster nodes: two daemons on 127.0.0.1 joined in one Akka cluster, one QEMU guest each
/// (CIDs 3 and 4, both in group g1). Guest 4 reaches guest 3 by CID exactly as a local sibling would, with and
/// without VMADDR_FLAG_TO_HOST: a short echo and 1 MiB, checksummed both ways.
/// </summary>
[Trait("Category", "E2E-Daemon")]
public sealed class DaemonClusterTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Formation = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Guests_on_two_cluster_nodes_reach_each_other_by_cid_with_and_without_the_to_host_flag()
    {
        await using var scenario = await E2EScenario.CreateAsync();
        await scenario.RunAsync(output, async () =>
        {
            var ports = FreePorts.Take(2);
            var seeds = string.Join('+', ports.Select(p => $"127.0.0.1:{p}"));
            var daemons = new DaemonProcess[2];
            for (var i = 0; i < 2; i++)
            {
                var cid = 3 + i;
                var socket = scenario.PathFor($"vhost{cid}.socket");
                var uds = scenario.PathFor($"vm{cid}.vsock");
                daemons[i] = await scenario.StartDaemonAsync(
                    ["--vm", $"guest-cid={cid},socket={socket},uds-path={uds},groups=g1", "--cluster-bind", $"127.0.0.1:{ports[i]}", "--cluster-seeds", seeds],
                    [socket], [uds]);
            }
            await WaitForLogAsync(daemons[0], $"sibling CID 4 on akka.tcp://vhost-device-vsock@127.0.0.1:{ports[1]} is reachable");
            await WaitForLogAsync(daemons[1], $"sibling CID 3 on akka.tcp://vhost-device-vsock@127.0.0.1:{ports[0]} is reachable");

            var guest3 = scenario.StartGuest("cid3", scenario.PathFor("vhost3.socket"), "cid;bg:listen-echo,1234,0", console: true);
            var guest4 = scenario.StartGuest("cid4", scenario.PathFor("vhost4.socket"), "cid", console: true);
            await guest3.WaitForListenerAsync(1234, E2ETimeouts.Boot);
            Assert.Equal("4", (await guest4.WaitForMarkerAsync("CID", null, E2ETimeouts.Boot)).Words[0]);

            var seed = 80;
            foreach (var (bytes, flags) in new[] { (13L, 0), (13L, 1), (1L << 20, 0), (1L << 20, 1) })
            {
                var s = ++seed;
                await guest4.RunStepAsync($"connect,3,1234,{bytes},{s},{flags}", E2ETimeouts.Transfer);
                var result = await guest4.WaitForMarkerAsync("RESULT", "connect", E2ETimeouts.Step, m => m.Get("seed") == $"{s}");
                output.WriteLine($"cid4 → cid3 (other node), {bytes} bytes, svm_flags {flags}: {result.Line}");
                Assert.Equal("1", result.Get("ok"));
                Assert.Equal($"{flags}", result.Get("flags"));
                var sha = TestPattern.Hex(TestPattern.Checksum(bytes, (ulong)s));
                Assert.Equal(sha, result.Get("sha"));
                Assert.Equal(sha, result.Get("rsha"));
                await guest3.WaitForMarkerAsync("ECHO", null, E2ETimeouts.Step,
                    m => m.Get("sha") == sha && m.Get("peer").StartsWith("4:", StringComparison.Ordinal));
            }
        });
    }

    private static async Task WaitForLogAsync(DaemonProcess daemon, string text)
    {
        var clock = Stopwatch.StartNew();
        while (!daemon.Log.Contains(text, StringComparison.Ordinal))
        {
            if (daemon.HasExited || clock.Elapsed > Formation)
                throw new TimeoutException(daemon.Describe($"no '{text}' in the log after {clock.Elapsed.TotalSeconds:0} s"));
            await Task.Delay(50);
        }
    }
}
