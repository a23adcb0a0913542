using System.Diagnostics;
using System.Net.Sockets;
using Vsock.Testing;

namespace Vsock.Integration.Tests;

/// <summary>
/// <c>close-timeout-ms</c>: once the host application has closed its socket and the guest was sent everything and
/// the EOF, a guest that does not close is reset after the timeout. A host that only shut its write side keeps the
/// stream (half-close), and a guest still reading what the host sent before closing is not cut off.
/// </summary>
public sealed class CloseTimeoutTests
{
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromMilliseconds(400);

    [Fact]
    public async Task A_guest_that_keeps_its_end_open_after_the_host_closed_is_reset_after_the_timeout()
    {
        await using var daemon = await InProcessDaemon.StartAsync(vmCount: 1, vm => vm with { CloseTimeout = CloseTimeout });
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        var (host, stream, cts) = await OpenAsync(guest, daemon);
        using var _ = cts;

        await host.SendAllAsync("bye"u8.ToArray(), cts.Token);
        host.Close();
        Assert.Equal("bye"u8.ToArray(), await stream.ReadToEndAsync(cts.Token)); // data, then EOF
        var eof = Stopwatch.StartNew();
        Assert.Equal(2u, stream.PeerShutdownFlags); // SHUTDOWN(SEND): the host sends no more

        // The guest's application neither closes nor sends: the device resets the stream after the timeout.
        await Scenario.WaitUntilAsync(() => stream.IsPeerReset, cts.Token);
        var after = eof.Elapsed;
        Assert.True(after >= CloseTimeout - TimeSpan.FromMilliseconds(50), $"reset {after.TotalMilliseconds:0} ms after the EOF, before the {CloseTimeout.TotalMilliseconds} ms timeout");
        Scenario.AssertClean(guest);
        await Scenario.VmServesAsync(guest, daemon[0].UdsPath!);
    }

    [Fact]
    public async Task A_host_that_only_shut_its_write_side_keeps_the_stream_while_the_guest_sends()
    {
        await using var daemon = await InProcessDaemon.StartAsync(vmCount: 1, vm => vm with { CloseTimeout = CloseTimeout });
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        var (host, stream, cts) = await OpenAsync(guest, daemon);
        using var _ = cts;
        using var __ = host;

        host.Shutdown(SocketShutdown.Send);
        Assert.Empty(await stream.ReadToEndAsync(cts.Token)); // EOF
        // The guest answers slowly, over five close timeouts: every byte arrives and nothing is reset.
        var reader = host.ReadToEndAsync(cts.Token);
        var sent = new MemoryStream();
        for (var i = 0; i < 20; i++)
        {
            var chunk = TestPattern.RandomBytes(1000, i);
            await stream.WriteAsync(chunk, cts.Token);
            sent.Write(chunk);
            await Task.Delay(CloseTimeout / 4, cts.Token);
        }
        Assert.False(stream.IsPeerReset);
        // Silent for twice the timeout: still open, since the host application can still read.
        await Task.Delay(CloseTimeout * 2, cts.Token);
        Assert.False(stream.IsPeerReset);
        stream.ShutdownWrite();
        Assert.Equal(Scenario.Hash(sent.ToArray()), Scenario.Hash(await reader));
        await stream.CloseAsync();
        Assert.Equal(CloseOutcome.ClosedByPeerReset, stream.CloseOutcome);
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task A_guest_still_reading_what_the_host_sent_before_it_closed_gets_all_of_it()
    {
        await using var daemon = await InProcessDaemon.StartAsync(vmCount: 1, vm => vm with { CloseTimeout = CloseTimeout });
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket, SyntheticGuestOptions.Default with { BufAlloc = 64 * 1024 });
        var (host, stream, cts) = await OpenAsync(guest, daemon);
        using var _ = cts;

        // 1 MiB, then the host closes; the guest reads 64 KiB every 100 ms (1.6 s, four close timeouts).
        var data = TestPattern.RandomBytes(1 << 20, 7);
        var send = host.SendAllAsync(data, cts.Token);
        var received = new MemoryStream();
        var buffer = new byte[64 * 1024];
        var closed = false;
        while (true)
        {
            if (!closed && send.IsCompleted)
            {
                await send;
                host.Close();
                closed = true;
            }
            await Task.Delay(100, cts.Token);
            var n = await stream.ReadAsync(buffer, cts.Token);
            if (n == 0)
                break;
            received.Write(buffer, 0, n);
        }
        Assert.Equal(Scenario.Hash(data), Scenario.Hash(received.ToArray()));
        Assert.False(stream.IsPeerReset, "the stream was reset while the guest was still reading");
        await stream.CloseAsync();
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task Zero_turns_the_timer_off()
    {
        await using var daemon = await InProcessDaemon.StartAsync(vmCount: 1, vm => vm with { CloseTimeout = TimeSpan.Zero });
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        var (host, stream, cts) = await OpenAsync(guest, daemon);
        using var _ = cts;

        host.Close();
        Assert.Empty(await stream.ReadToEndAsync(cts.Token));
        await Task.Delay(CloseTimeout * 3, cts.Token);
        Assert.False(stream.IsPeerReset);
        await stream.CloseAsync();
        Assert.Equal(CloseOutcome.ClosedByPeerReset, stream.CloseOutcome);
    }

    /// <summary>A host client on uds-path, accepted by a guest listener.</summary>
    private static async Task<(Socket Host, GuestStream Stream, CancellationTokenSource Cts)> OpenAsync(SyntheticGuest guest, InProcessDaemon daemon)
    {
        var cts = new CancellationTokenSource(Scenario.Timeout);
        var port = Scenario.NextPort();
        using var listener = guest.Listen(port);
        var host = await HostVsock.ConnectAsync(daemon[0].UdsPath!, port, Scenario.Timeout);
        var stream = await listener.AcceptAsync(cts.Token);
        return (host, stream, cts);
    }
}
