using System.Diagnostics;
using System.Net.Sockets;
using Vsock.E2E.Tests.Rig;

namespace Vsock.E2E.Tests;

/// <summary>
/// The daemon killed with SIGKILL under a running QEMU 7.2 guest and started again (docs/RELIABILITY.md). QEMU's
/// <c>vhost-user-vsock-pci</c> cannot recover: it has no handler for its chardev's events, so it never talks to a
/// new backend, and with <c>reconnect=</c> it cannot even start (its realize sends GET_FEATURES before the
/// chardev's background connect has happened). These tests assert exactly that, so a QEMU that changes it is noticed.
/// </summary>
[Trait("Category", "E2E-Daemon")]
public sealed class DaemonRestartTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Qemu_7_2_cannot_start_vhost_user_vsock_on_a_reconnecting_chardev()
    {
        await using var scenario = await E2EScenario.CreateAsync();
        await scenario.RunAsync(output, async () =>
        {
            var socketPath = scenario.PathFor("vhost3.socket");
            var uds = scenario.PathFor("vm3.vsock");
            var daemon = await scenario.StartDaemonAsync(["--guest-cid", "3", "--socket", socketPath, "--uds-path", uds], [socketPath], [uds]);

            var guest = scenario.StartGuest("reconnect", o => o with { VhostUserSocket = socketPath, Run = "cid", ChardevReconnectSeconds = 1 });
            var status = await guest.WaitForExitAsync(E2ETimeouts.Step);

            Assert.Equal(1, status);
            Assert.Contains("vhost-user-vsock-pci,chardev=char0: Failed to set msg fds.", guest.ConsoleText, StringComparison.Ordinal);
            Assert.Contains("vhost_backend_init failed: Protocol error", guest.ConsoleText, StringComparison.Ordinal);
            Assert.DoesNotContain("VSOCKTEST BOOTED", guest.ConsoleText, StringComparison.Ordinal);
            Assert.False(daemon.HasExited);
        });
    }

    [Fact]
    public async Task Daemon_killed_under_a_running_guest_and_restarted_leaves_that_guest_without_vsock_until_a_new_qemu()
    {
        await using var scenario = await E2EScenario.CreateAsync();
        await scenario.RunAsync(output, async () =>
        {
            var socketPath = scenario.PathFor("vhost3.socket");
            var uds = scenario.PathFor("vm3.vsock");
            string[] args = ["--guest-cid", "3", "--socket", socketPath, "--uds-path", uds];
            var first = await scenario.StartDaemonAsync(args, [socketPath], [uds]);
            scenario.Listen($"{uds}_5000", HostListener.Behaviour.SinkWithReply);
            var guest = scenario.StartGuest("guest", socketPath, "cid;bg:listen-echo,1234,0", console: true, lifetime: TimeSpan.FromMinutes(4));
            await guest.WaitForListenerAsync(1234, E2ETimeouts.Boot);

            // Before: a connect to a host port nobody listens on is refused at once (our RST: ECONNRESET).
            Assert.Equal(0, await guest.RunStepAsync("connect-refused,2,5999", E2ETimeouts.Step));
            var before = await guest.WaitForMarkerAsync("REFUSED", null, E2ETimeouts.Step);
            Assert.Equal("104", before.Get("errno"));

            // Streams open both ways when the daemon dies: host → guest echo, guest → host send of 1 GiB.
            using var deadline = new CancellationTokenSource(E2ETimeouts.Transfer);
            var progress = new TransferProgress();
            var socket = await HostVsock.ConnectAsync(uds, 1234, deadline.Token);
            var echo = PatternTransfer.EchoAsync(socket, 1L << 30, 71, deadline.Token, progress);
            Assert.Equal(0, await guest.RunStepAsync("bg:send,2,5000,1073741824", E2ETimeouts.Step));
            var clock = Stopwatch.StartNew();
            while (progress.Received < 1024 * 1024 && !echo.IsCompleted && clock.Elapsed < E2ETimeouts.Step)
                await Task.Delay(10);
            Assert.True(progress.Received >= 1024 * 1024, $"only {progress.Received} bytes echoed before the kill");

            await first.KillAsync(E2ETimeouts.Step);

            // The host side of every stream ends with the process (EOF or a reset).
            var ended = await Task.WhenAny(echo, Task.Delay(TimeSpan.FromSeconds(10)));
            Assert.True(ended == echo, "the host connection stayed open after the daemon was killed");
            socket.Dispose();

            // The daemon comes back on the same socket (the old file is still there) and waits for a VMM.
            var second = await scenario.StartDaemonAsync(args, [socketPath], [uds]);
            await Task.Delay(TimeSpan.FromSeconds(5));

            // QEMU stays up but never connects to it: no VMM, so host clients are closed at once.
            Assert.False(guest.HasExited, "QEMU exited when its backend went away");
            Assert.DoesNotContain("VMM connected", second.Log, StringComparison.Ordinal);
            await AssertClosedAtOnceAsync(uds, 1234, deadline.Token);

            // The guest's driver still thinks it has a device: nothing answers its REQUEST, so connect() times out
            // (Linux's 2 s connect timeout: ETIMEDOUT) instead of being refused.
            Assert.Equal(0, await guest.RunStepAsync("connect-refused,2,5999", E2ETimeouts.Step));
            var after = (await guest.WaitForMarkersAsync("REFUSED", null, 2, E2ETimeouts.Step))[^1];
            Assert.Equal("110", after.Get("errno"));
            Assert.True(int.Parse(after.Get("ms"), System.Globalization.CultureInfo.InvariantCulture) >= 1900, after.ToString());

            // The guest's send in progress got neither an RST nor its reply: it hangs.
            Assert.DoesNotContain(guest.ConsoleLines, l => l.StartsWith("VSOCKTEST RESULT send", StringComparison.Ordinal));
            Assert.DoesNotContain("VMM connected", second.Log, StringComparison.Ordinal);
            Assert.DoesNotContain(guest.ConsoleLines, l => l.Contains("qemu-system", StringComparison.Ordinal)); // QEMU said nothing

            // QEMU itself notices only when it stops the device (here: its SIGTERM): the backend's socket is gone.
            await guest.DisposeAsync();
            Assert.Contains("Failed to set msg fds.", guest.ConsoleText, StringComparison.Ordinal);
            Assert.Contains("vhost VQ 0 ring restore failed", guest.ConsoleText, StringComparison.Ordinal);

            // Only a new QEMU gets vsock again, from the restarted daemon.
            var fresh = scenario.StartGuest("fresh", socketPath, "cid;bg:listen-echo,1234,0");
            await fresh.WaitForListenerAsync(1234, E2ETimeouts.Boot);
            using var again = await HostVsock.ConnectAsync(uds, 1234, deadline.Token);
            var result = await PatternTransfer.EchoAsync(again, 4L * 1024 * 1024, 72, deadline.Token);
            Assert.True(result.IsExactEcho, result.ToString());
        });
    }

    /// <summary>A host client is closed without an OK (EOF, or EPIPE/ECONNRESET if the close beat its CONNECT line).</summary>
    private static async Task AssertClosedAtOnceAsync(string uds, uint port, CancellationToken cancellationToken)
    {
        try
        {
            using var socket = await HostVsock.ConnectAsync(uds, port, cancellationToken);
            Assert.Fail($"CONNECT {port} was answered OK with no VMM attached");
        }
        catch (GuestRefusedException)
        {
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.Shutdown or SocketError.ConnectionReset)
        {
        }
    }
}
