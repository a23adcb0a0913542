using System.Diagnostics;
using Vsock.E2E.Tests.Rig;

namespace Vsock.E2E.Tests;

/// <summary>The daemon outlives its VMM: QEMU SIGKILLed mid-transfer, then a new QEMU on the same socket.</summary>
[Trait("Category", "E2E-Daemon")]
public sealed class DaemonLifecycleTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Qemu_killed_mid_transfer_then_a_new_qemu_on_the_same_socket_works()
    {
        await using var scenario = await E2EScenario.CreateAsync();
        await scenario.RunAsync(output, async () =>
        {
            var socketPath = scenario.PathFor("vhost3.socket");
            var uds = scenario.PathFor("vm3.vsock");
            var daemon = await scenario.StartDaemonAsync(["--guest-cid", "3", "--socket", socketPath, "--uds-path", uds], [socketPath], [uds]);
            var first = scenario.StartGuest("first", socketPath, "bg:listen-echo,1234,0");
            await first.WaitForListenerAsync(1234, E2ETimeouts.Boot);

            using var deadline = new CancellationTokenSource(E2ETimeouts.Transfer);
            var progress = new TransferProgress();
            var socket = await HostVsock.ConnectAsync(uds, 1234, deadline.Token);
            var transfer = PatternTransfer.EchoAsync(socket, 256L * 1024 * 1024, 61, deadline.Token, progress);
            var clock = Stopwatch.StartNew();
            while (progress.Received < 1024 * 1024 && !transfer.IsCompleted && clock.Elapsed < E2ETimeouts.Step)
            {
                await Task.Delay(10);
            }
            Assert.True(progress.Received >= 1024 * 1024, $"only {progress.Received} bytes echoed before the kill");

            first.Kill(); // SIGKILL: QEMU gets no chance to stop the rings
            await first.WaitForExitAsync(E2ETimeouts.Step);

            // The daemon drops the host connections of the vanished VM instead of leaving them hanging.
            var ended = await Task.WhenAny(transfer, Task.Delay(TimeSpan.FromSeconds(15)));
            Assert.True(ended == transfer, "the host connection stayed open after the VMM was killed");
            socket.Dispose();
            Assert.False(daemon.HasExited, "the daemon exited when its VMM was killed");

            await daemon.WaitForSocketsAsync(E2ETimeouts.Step);
            var second = await StartGuestRetryingAsync(scenario, "second", socketPath, "cid;bg:listen-echo,1234,0");
            await second.WaitForListenerAsync(1234, E2ETimeouts.Boot);
            Assert.Equal("3", (await second.WaitForMarkerAsync("CID", null, E2ETimeouts.Step)).Words[0]);

            using var again = await HostVsock.ConnectAsync(uds, 1234, deadline.Token);
            var result = await PatternTransfer.EchoAsync(again, 10L * 1024 * 1024, 62, deadline.Token);
            Assert.True(result.IsExactEcho, result.ToString());
        });
    }

    /// <summary>
    /// The daemon re-listens after a VMM disconnect, perhaps a moment after the socket file reappears; QEMU
    /// gives up at once if nobody accepts, so a start that fails to connect is retried for a few seconds.
    /// </summary>
    private static async Task<QemuGuest> StartGuestRetryingAsync(E2EScenario scenario, string name, string socketPath, string run)
    {
        var clock = Stopwatch.StartNew();
        for (var attempt = 1; ; attempt++)
        {
            var guest = scenario.StartGuest($"{name}#{attempt}", socketPath, run);
            try
            {
                await guest.WaitForMarkerAsync("BOOTED", null, E2ETimeouts.Boot);
                return guest;
            }
            catch (GuestConsoleException) when (guest.HasExited && guest.ConsoleText.Contains("Failed to connect", StringComparison.Ordinal)
                                                && clock.Elapsed < TimeSpan.FromSeconds(10))
            {
                await Task.Delay(200);
            }
        }
    }
}
