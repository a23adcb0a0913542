using Vsock.E2E.Tests.Rig;

namespace Vsock.E2E.Tests;

/// <summary>
/// Two VMs served by one daemon process, configured with <c>--vm</c> twice or with a <c>--config</c> YAML
/// file (the reference's snake_case keys); and sibling VMs: traffic in the default group, and reachability that follows the groups.
/// </summary>
[Trait("Category", "E2E-Daemon")]
public sealed class DaemonMultiVmTests(ITestOutputHelper output)
{
    private const string GuestScript = "cid;bg:listen-echo,1234,0";

    [Fact]
    public async Task Two_vms_from_repeated_vm_options_each_serve_their_own_uds()
    {
        await using var scenario = await E2EScenario.CreateAsync();
        await scenario.RunAsync(output, async () =>
        {
            var vms = TwoVms(scenario);
            await scenario.StartDaemonAsync([.. vms.SelectMany(vm => new[] { "--vm", vm.VmOption })], [.. vms.Select(vm => vm.Socket)], [.. vms.Select(vm => vm.Uds)]);
            await BootAndCheckHostPathsAsync(scenario, vms);
        });
    }

    [Fact]
    public async Task Two_vms_from_a_yaml_config_each_serve_their_own_uds()
    {
        await using var scenario = await E2EScenario.CreateAsync();
        await scenario.RunAsync(output, async () =>
        {
            var vms = TwoVms(scenario);
            var config = scenario.PathFor("vsock.yaml");
            await File.WriteAllTextAsync(config, "vms:\n" + string.Concat(vms.Select(vm =>
                $"  - guest_cid: {vm.Cid}\n    socket: {vm.Socket}\n    uds_path: {vm.Uds}\n    tx_buffer_size: 65536\n    queue_size: 1024\n")));
            await scenario.StartDaemonAsync(["--config", config], [.. vms.Select(vm => vm.Socket)], [.. vms.Select(vm => vm.Uds)]);
            await BootAndCheckHostPathsAsync(scenario, vms);
        });
    }

    [Fact]
    public async Task Sibling_vms_in_the_default_group_stream_10MiB_each_way()
    {
        await using var scenario = await E2EScenario.CreateAsync();
        await scenario.RunAsync(output, async () =>
        {
            var vms = TwoVms(scenario);
            await scenario.StartDaemonAsync([.. vms.SelectMany(vm => new[] { "--vm", vm.VmOption })], [.. vms.Select(vm => vm.Socket)], [.. vms.Select(vm => vm.Uds)]);
            var a = scenario.StartGuest("cid3", vms[0].Socket, GuestScript, console: true);
            var b = scenario.StartGuest("cid4", vms[1].Socket, GuestScript, console: true);
            await b.WaitForListenerAsync(1234, E2ETimeouts.Boot);
            await a.WaitForListenerAsync(1234, E2ETimeouts.Boot);

            const long Bytes = 10 * 1024 * 1024;
            await a.RunStepAsync($"connect,4,1234,{Bytes},41", E2ETimeouts.Transfer);
            var fromA = await a.WaitForMarkerAsync("RESULT", "connect", E2ETimeouts.Step, m => m.Get("seed") == "41");
            output.WriteLine($"cid3 → cid4 → cid3: {fromA.Line}");
            Assert.Equal("1", fromA.Get("ok"));
            var sha = TestPattern.Hex(TestPattern.Checksum(Bytes, 41));
            Assert.Equal(sha, fromA.Get("sha"));
            Assert.Equal(sha, fromA.Get("rsha"));
            await b.WaitForMarkerAsync("ECHO", null, E2ETimeouts.Step, m => m.Get("sha") == sha && m.Get("peer").StartsWith("3:", StringComparison.Ordinal));
        });
    }

    /// <summary>
    /// Three VMs: 3 in {a}, 4 in {a, b}, 5 in {b}. 3↔4 and 4↔5 share a group; 3↔5 do not and must be
    /// refused at once (an RST, not the guest's 2 s timeout), in both directions.
    /// </summary>
    [Fact]
    public async Task Three_vms_with_overlapping_groups_reach_exactly_the_vms_they_share_a_group_with()
    {
        await using var scenario = await E2EScenario.CreateAsync();
        await scenario.RunAsync(output, async () =>
        {
            Vm[] vms =
            [
                new(3, scenario.PathFor("vhost3.socket"), scenario.PathFor("vm3.vsock"), "a"),
                new(4, scenario.PathFor("vhost4.socket"), scenario.PathFor("vm4.vsock"), "a+b"),
                new(5, scenario.PathFor("vhost5.socket"), scenario.PathFor("vm5.vsock"), "b"),
            ];
            await scenario.StartDaemonAsync([.. vms.SelectMany(vm => new[] { "--vm", vm.VmOption })], [.. vms.Select(vm => vm.Socket)], [.. vms.Select(vm => vm.Uds)]);
            var guests = vms.Select(vm => scenario.StartGuest($"cid{vm.Cid}", vm.Socket, GuestScript, console: true)).ToArray();
            foreach (var guest in guests)
                await guest.WaitForListenerAsync(1234, E2ETimeouts.Boot);

            const long Bytes = 256 * 1024;
            var seed = 60;
            foreach (var (from, to, reachable) in new[] { (0, 1, true), (1, 0, true), (1, 2, true), (2, 1, true), (0, 2, false), (2, 0, false) })
            {
                var guest = guests[from];
                var target = vms[to].Cid;
                if (reachable)
                {
                    var s = ++seed;
                    await guest.RunStepAsync($"connect,{target},1234,{Bytes},{s}", E2ETimeouts.Transfer);
                    var result = await guest.WaitForMarkerAsync("RESULT", "connect", E2ETimeouts.Step, m => m.Get("seed") == $"{s}");
                    output.WriteLine($"cid{vms[from].Cid} → cid{target}: {result.Line}");
                    Assert.Equal("1", result.Get("ok"));
                }
                else
                {
                    await guest.RunStepAsync($"connect-refused,{target},1234", E2ETimeouts.Step);
                    var refused = await guest.WaitForMarkerAsync("REFUSED", null, E2ETimeouts.Step, m => m.Get("cid") == $"{target}");
                    output.WriteLine($"cid{vms[from].Cid} → cid{target}: {refused.Line}");
                    Assert.NotEqual("110", refused.Get("errno")); // 110 = ETIMEDOUT: nobody answered
                    Assert.True(refused.GetLong("ms") < 1000, refused.Line);
                }
            }
        });
    }

    private sealed record Vm(uint Cid, string Socket, string Uds, string? Groups = null)
    {
        public string VmOption => $"guest-cid={Cid},socket={Socket},uds-path={Uds}" + (Groups is null ? "" : $",groups={Groups}");
    }

    private static Vm[] TwoVms(E2EScenario scenario) =>
    [
        new(3, scenario.PathFor("vhost3.socket"), scenario.PathFor("vm3.vsock")),
        new(4, scenario.PathFor("vhost4.socket"), scenario.PathFor("vm4.vsock")),
    ];

    private async Task BootAndCheckHostPathsAsync(E2EScenario scenario, Vm[] vms)
    {
        var guests = vms.Select(vm => scenario.StartGuest($"cid{vm.Cid}", vm.Socket, GuestScript)).ToArray();
        using var deadline = new CancellationTokenSource(E2ETimeouts.Transfer);
        for (var i = 0; i < vms.Length; i++)
        {
            await guests[i].WaitForListenerAsync(1234, E2ETimeouts.Boot);
            Assert.Equal($"{vms[i].Cid}", (await guests[i].WaitForMarkerAsync("CID", null, E2ETimeouts.Step)).Words[0]);
        }
        // Both at once, each through its own uds_path, with different data: crossed wires would show.
        var transfers = vms.Select(async (vm, i) =>
        {
            using var socket = await HostVsock.ConnectAsync(vm.Uds, 1234, deadline.Token);
            return await PatternTransfer.EchoAsync(socket, 2 * 1024 * 1024, 70 + vm.Cid, deadline.Token);
        }).ToArray();
        var results = await Task.WhenAll(transfers);
        for (var i = 0; i < vms.Length; i++)
        {
            output.WriteLine($"cid{vms[i].Cid}: {results[i]}");
            Assert.True(results[i].IsExactEcho, results[i].ToString());
            var sha = TestPattern.Hex(results[i].SentSha);
            await guests[i].WaitForMarkerAsync("ECHO", null, E2ETimeouts.Step, m => m.Get("sha") == sha);
        }
    }
}
