using System.Diagnostics;

namespace Vsock.E2E.Tests;

/// <summary>
/// The daemon's data path with a real guest (issue 4's scenarios): host→guest CONNECT, guest→host
/// <c>&lt;uds_path&gt;_P</c>, refusals both ways, 32 concurrent connections, mid-transfer closes.
/// One daemon and guest are shared (see <see cref="DaemonGuestFixture"/>); each test uses its own ports.
/// The transfers end with a half-close (SHUT_WR) and read the peer to EOF, so they also check that the
/// daemon carries half-closes both ways (the reference does not: its issue #874).
/// </summary>
[Trait("Category", "E2E-Daemon")]
public sealed class DaemonDataPathTests(DaemonGuestFixture fixture, ITestOutputHelper output) : IClassFixture<DaemonGuestFixture>
{
    private const long TenMiB = 10 * 1024 * 1024;

    private static string Sha(long bytes, ulong seed) => TestPattern.Hex(TestPattern.Checksum(bytes, seed));

    private static CancellationTokenSource Deadline() => new(E2ETimeouts.Transfer);

    [Fact]
    public Task Guest_gets_the_cid_given_on_the_command_line() => fixture.RunAsync(output, async () =>
    {
        var cid = await fixture.Guest.WaitForMarkerAsync("CID", null, E2ETimeouts.Step);
        Assert.Equal($"{DaemonGuestFixture.GuestCid}", cid.Words[0]);
    });

    [Fact]
    public Task Host_to_guest_connect_echoes_10MiB_each_way() => fixture.RunAsync(output, async () =>
    {
        using var deadline = Deadline();
        using var socket = await HostVsock.ConnectAsync(fixture.UdsPath, DaemonGuestFixture.EchoPort, deadline.Token);
        var result = await PatternTransfer.EchoAsync(socket, TenMiB, 11, deadline.Token);
        output.WriteLine($"host→guest echo: {result}");
        Assert.True(result.IsExactEcho, result.ToString());
        var sha = Sha(TenMiB, 11);
        await fixture.Guest.WaitForMarkerAsync("ECHO", null, E2ETimeouts.Step, m => m.Get("sha") == sha && m.GetLong("bytes") == TenMiB);
    });

    [Fact]
    public Task Guest_to_host_sends_10MiB_to_the_port_listener_and_reads_the_reply() => fixture.RunAsync(output, async () =>
    {
        var listener = fixture.Scenario.Listen($"{fixture.UdsPath}_5000", HostListener.Behaviour.SinkWithReply);
        var rc = await fixture.Guest.RunStepAsync($"send,2,5000,{TenMiB},21", E2ETimeouts.Transfer);
        var send = await fixture.Guest.WaitForMarkerAsync("RESULT", "send", E2ETimeouts.Step, m => m.Get("port") == "5000");
        output.WriteLine($"guest→host: {send.Line}");
        Assert.Equal(0, rc);
        Assert.Equal("1", send.Get("ok"));
        var served = Assert.Single(await listener.WaitForConnectionsAsync(1, E2ETimeouts.Step));
        Assert.Null(served.Error);
        Assert.Equal(TenMiB, served.BytesRead);
        Assert.Equal(Sha(TenMiB, 21), TestPattern.Hex(served.Sha));
    });

    [Fact]
    public Task Host_connect_to_a_guest_port_without_listener_is_refused() => fixture.RunAsync(output, async () =>
    {
        using var deadline = Deadline();
        var clock = Stopwatch.StartNew();
        await Assert.ThrowsAsync<GuestRefusedException>(() => HostVsock.ConnectAsync(fixture.UdsPath, 4321, deadline.Token));
        output.WriteLine($"host saw the refusal after {clock.ElapsedMilliseconds} ms");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"refusal took {clock.ElapsedMilliseconds} ms");

        // The refused connection left nothing behind: the next one works.
        using var socket = await HostVsock.ConnectAsync(fixture.UdsPath, DaemonGuestFixture.EchoPort, deadline.Token);
        Assert.True((await PatternTransfer.EchoAsync(socket, 65536, 12, deadline.Token)).IsExactEcho);
    });

    [Fact]
    public Task Guest_connect_to_a_host_port_without_listener_is_refused_well_under_2s() => fixture.RunAsync(output, async () =>
    {
        await fixture.Guest.RunStepAsync("connect-refused,2,5999", E2ETimeouts.Step);
        var refused = await fixture.Guest.WaitForMarkerAsync("REFUSED", null, E2ETimeouts.Step, m => m.Get("port") == "5999");
        output.WriteLine(refused.Line);
        // Linux gives up after 2 s (ETIMEDOUT, errno 110) when the device never answers; an RST is immediate.
        Assert.NotEqual("110", refused.Get("errno"));
        Assert.True(refused.GetLong("ms") < 1000, refused.Line);
    });

    [Fact]
    public Task Thirty_two_concurrent_connections_half_each_way() => fixture.RunAsync(output, async () =>
    {
        const int PerSide = 16;
        const long Bytes = 256 * 1024;
        var listener = fixture.Scenario.Listen($"{fixture.UdsPath}_5001", HostListener.Behaviour.Echo);
        using var deadline = Deadline();
        var guestSide = fixture.Guest.RunStepAsync($"connect-many,2,5001,{PerSide},{Bytes},100", E2ETimeouts.Transfer);
        var hostSide = Enumerable.Range(0, PerSide).Select(async i =>
        {
            using var socket = await HostVsock.ConnectAsync(fixture.UdsPath, DaemonGuestFixture.EchoPort, deadline.Token);
            return await PatternTransfer.EchoAsync(socket, Bytes, (ulong)(200 + i), deadline.Token);
        }).ToList();
        var hostResults = await Task.WhenAll(hostSide);
        var rc = await guestSide;

        Assert.All(hostResults, r => Assert.True(r.IsExactEcho, r.ToString()));
        var many = await fixture.Guest.WaitForMarkerAsync("RESULT", "connect-many", E2ETimeouts.Step, m => m.Get("port") == "5001");
        Assert.Equal($"{PerSide}", many.Get("ok"));
        Assert.Equal(0, rc);
        var served = await listener.WaitForConnectionsAsync(PerSide, E2ETimeouts.Step);
        var expected = Enumerable.Range(100, PerSide).Select(seed => Sha(Bytes, (ulong)seed)).Order();
        Assert.Equal(expected, served.Select(c => TestPattern.Hex(c.Sha)).Order());
    });

    [Fact]
    public Task Host_closing_mid_transfer_leaves_the_guest_port_usable() => fixture.RunAsync(output, async () =>
    {
        // A listener of its own, so the end of exactly this connection can be seen in the console.
        Assert.Equal(0, await fixture.Guest.RunStepAsync("bg:listen-echo,1236,2", E2ETimeouts.Step));
        await fixture.Guest.WaitForListenerAsync(1236, E2ETimeouts.Step);
        using var deadline = Deadline();
        var progress = new TransferProgress();
        var socket = await HostVsock.ConnectAsync(fixture.UdsPath, 1236, deadline.Token);
        var transfer = PatternTransfer.EchoAsync(socket, 64L * 1024 * 1024, 13, deadline.Token, progress);
        await WaitUntilAsync(() => progress.Received >= 256 * 1024 || transfer.IsCompleted, "256 KiB echoed before the close");
        socket.Dispose(); // abrupt: no shutdown, data in flight both ways
        await Assert.ThrowsAnyAsync<Exception>(() => transfer);

        // The guest's echo child sees the end of that connection (EOF or reset)...
        await fixture.Guest.WaitForLineAsync(
            line => line.StartsWith("VSOCKTEST ECHO port=1236 ", StringComparison.Ordinal)
                || line.StartsWith("VSOCKTEST ECHO-RESET port=1236 ", StringComparison.Ordinal),
            E2ETimeouts.Step, "the guest's echo of the closed connection to end");
        // ...and a new connection to the same port works.
        using var again = await HostVsock.ConnectAsync(fixture.UdsPath, 1236, deadline.Token);
        var result = await PatternTransfer.EchoAsync(again, 1024 * 1024, 14, deadline.Token);
        Assert.True(result.IsExactEcho, result.ToString());
        var server = await fixture.Guest.WaitForMarkerAsync("RESULT", "listen-echo", E2ETimeouts.Step, m => m.Get("port") == "1236");
        Assert.Equal("0", server.Get("failed"));
    });

    [Fact]
    public Task Guest_closing_mid_transfer_leaves_the_host_connection_usable() => fixture.RunAsync(output, async () =>
    {
        using var deadline = Deadline();
        Assert.Equal(0, await fixture.Guest.RunStepAsync("bg:listen-close-mid,1235,65536,1", E2ETimeouts.Step));
        await fixture.Guest.WaitForListenerAsync(1235, E2ETimeouts.Step);

        var socket = await HostVsock.ConnectAsync(fixture.UdsPath, 1235, deadline.Token);
        using (socket)
        {
            // The guest reads 64 KiB and closes; the host's 8 MiB transfer must end (error or short echo), not hang.
            var cut = PatternTransfer.EchoAsync(socket, 8L * 1024 * 1024, 15, deadline.Token);
            var outcome = await Task.WhenAny(cut, Task.Delay(TimeSpan.FromSeconds(20)));
            Assert.True(outcome == cut, "the host transfer did not end after the guest closed its socket");
            if (cut.IsCompletedSuccessfully)
            {
                Assert.False(cut.Result.IsExactEcho, $"a listener that closed after 64 KiB echoed everything: {cut.Result}");
            }
        }
        await fixture.Guest.WaitForMarkerAsync("CLOSED-MID", null, E2ETimeouts.Step, m => m.Get("port") == "1235");

        using var again = await HostVsock.ConnectAsync(fixture.UdsPath, 1235, deadline.Token);
        var result = await PatternTransfer.EchoAsync(again, 1024 * 1024, 16, deadline.Token);
        Assert.True(result.IsExactEcho, result.ToString());
    });

    [Fact]
    public Task Guest_closing_its_connection_to_the_host_mid_transfer_then_connecting_again_works() => fixture.RunAsync(output, async () =>
    {
        var slow = HostListener.Serve(HostListener.Behaviour.SlowDrain);
        var sink = HostListener.Serve(HostListener.Behaviour.SinkWithReply);
        var listener = fixture.Scenario.Listen($"{fixture.UdsPath}_5002", (s, i, ct) => i == 1 ? slow(s, i, ct) : sink(s, i, ct));

        Assert.Equal(0, await fixture.Guest.RunStepAsync("connect-close-mid,2,5002,4194304", E2ETimeouts.Transfer));
        var first = (await listener.WaitForConnectionsAsync(1, E2ETimeouts.Step))[0];
        output.WriteLine($"host side of the connection the guest closed: {first}");

        Assert.Equal(0, await fixture.Guest.RunStepAsync("send,2,5002,1048576,31", E2ETimeouts.Transfer));
        var second = (await listener.WaitForConnectionsAsync(2, E2ETimeouts.Step))[1];
        Assert.Equal(Sha(1024 * 1024, 31), TestPattern.Hex(second.Sha));
    });

    [Fact]
    public Task Throughput_and_latency_are_measured() => fixture.RunAsync(output, async () =>
    {
        fixture.Scenario.Listen($"{fixture.UdsPath}_5003", HostListener.Behaviour.SinkWithReply);
        fixture.Scenario.Listen($"{fixture.UdsPath}_5004", HostListener.Behaviour.Echo);
        Assert.Equal(0, await fixture.Guest.RunStepAsync("throughput,2,5003,16777216", E2ETimeouts.Transfer));
        Assert.Equal(0, await fixture.Guest.RunStepAsync("latency,2,5004,500", E2ETimeouts.Transfer));
        output.WriteLine((await fixture.Guest.WaitForMarkerAsync("RESULT", "throughput", E2ETimeouts.Step)).Line);
        output.WriteLine((await fixture.Guest.WaitForMarkerAsync("RESULT", "latency", E2ETimeouts.Step)).Line);

        using var deadline = Deadline();
        using var socket = await HostVsock.ConnectAsync(fixture.UdsPath, DaemonGuestFixture.EchoPort, deadline.Token);
        var echo = await PatternTransfer.EchoAsync(socket, 16L * 1024 * 1024, 17, deadline.Token);
        Assert.True(echo.IsExactEcho, echo.ToString());
        output.WriteLine($"host→guest→host echo of 16 MiB: {echo.Elapsed.TotalMilliseconds:0} ms, {echo.MegabytesPerSecond:0.0} MB/s each way");
    });

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > E2ETimeouts.Step)
            {
                throw new TimeoutException($"timed out waiting for {what}");
            }
            await Task.Delay(10);
        }
    }
}
