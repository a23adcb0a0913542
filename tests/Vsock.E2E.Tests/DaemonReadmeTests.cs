using Vsock.E2E.Tests.Rig;

namespace Vsock.E2E.Tests;

/// <summary>
/// The seed README's own example, run as written (only the paths moved into a temp directory):
/// <c>vhost-device-vsock --vm guest-cid=4,uds-path=/tmp/vm4.vsock,socket=/tmp/vhost4.socket</c>, then
/// <c>CONNECT 1234</c> from the host and a guest connection to the host's <c>vm4.vsock_5000</c>, both at once.
/// </summary>
[Trait("Category", "E2E-Daemon")]
public sealed class DaemonReadmeTests(ITestOutputHelper output)
{
    private const long TenMiB = 10 * 1024 * 1024;

    [Fact]
    public async Task Readme_vm_command_line_serves_host_to_guest_and_guest_to_host()
    {
        await using var scenario = await E2EScenario.CreateAsync();
        await scenario.RunAsync(output, async () =>
        {
            var uds = scenario.PathFor("vm4.vsock");
            var socket = scenario.PathFor("vhost4.socket");
            await scenario.StartDaemonAsync(["--vm", $"guest-cid=4,uds-path={uds},socket={socket}"], [socket], [uds]);
            var sink = scenario.Listen($"{uds}_5000", HostListener.Behaviour.SinkWithReply);
            var guest = scenario.StartGuest("cid4", socket, $"cid;bg:listen-echo,1234,1;send,2,5000,{TenMiB},51;wait");

            await guest.WaitForListenerAsync(1234, E2ETimeouts.Boot);
            using var deadline = new CancellationTokenSource(E2ETimeouts.Transfer);
            using var connection = await HostVsock.ConnectAsync(uds, 1234, deadline.Token);
            var echo = await PatternTransfer.EchoAsync(connection, TenMiB, 52, deadline.Token);
            output.WriteLine($"host→guest: {echo}");
            Assert.True(echo.IsExactEcho, echo.ToString());

            var done = await guest.WaitForMarkerAsync("DONE", null, E2ETimeouts.Transfer);
            Assert.Equal("0", done.Get("failures"));
            Assert.Equal("4", (await guest.WaitForMarkerAsync("CID", null, E2ETimeouts.Step)).Words[0]);
            var send = await guest.WaitForMarkerAsync("RESULT", "send", E2ETimeouts.Step);
            output.WriteLine($"guest→host: {send.Line}");
            Assert.Equal("1", send.Get("ok"));
            var served = Assert.Single(await sink.WaitForConnectionsAsync(1, E2ETimeouts.Step));
            Assert.Equal(TestPattern.Hex(TestPattern.Checksum(TenMiB, 51)), TestPattern.Hex(served.Sha));
        });
    }
}
