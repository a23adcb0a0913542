using System.Diagnostics;
using System.Net.Sockets;
using Vsock.Device.Interop;
using Vsock.E2E.Tests.Rig;

namespace Vsock.E2E.Tests;

/// <summary>
/// One daemon with <c>--tx-buffer-size 262144</c> (so the guest may send 200,000-byte messages: Linux refuses a
/// SEQPACKET message larger than its peer's buffer) and one guest for all of <see cref="DaemonSeqpacketTests"/>.
/// QEMU 7.2's <c>vhost-user-vsock-pci</c> passes VIRTIO_VSOCK_F_SEQPACKET on by itself (<c>seqpacket=auto</c>).
/// The guest echoes STREAM on 1234 and SEQPACKET on 1300.
/// </summary>
public sealed class SeqpacketGuestFixture : SharedGuestFixture
{
    public const uint StreamPort = 1234;
    public const uint SeqpacketPort = 1300;

    public string UdsPath => Scenario.PathFor("vm3.vsock");

    protected override async Task StartAsync(E2EScenario scenario)
    {
        var socket = Scenario.PathFor("vhost3.socket");
        await scenario.StartDaemonAsync(
            ["--guest-cid", "3", "--socket", socket, "--uds-path", UdsPath, "--tx-buffer-size", "262144"], [socket], [UdsPath]);
        Guest = scenario.StartGuest("cid3", socket, $"cid;bg:listen-echo,{StreamPort},0;bg:seq-listen-echo,{SeqpacketPort},0",
            console: true, lifetime: TimeSpan.FromMinutes(20));
        await Guest.WaitForListenerAsync(StreamPort, E2ETimeouts.Boot);
        await Guest.WaitForListenerAsync(SeqpacketPort, E2ETimeouts.Boot);
    }
}

/// <summary>
/// SOCK_SEQPACKET end to end (issue 12) with a Linux 6.1 guest: messages of 1, 100, 4095, 4096, 4097, 65536, 65537
/// and 200,000 bytes and a few hundred seeded random lengths, each echoed by the program on the other side and
/// checked length and bytes, guest-initiated (<c>uds_path_P</c>) and host-initiated (<c>uds_path_seqpacket</c>);
/// a listener of the other socket type refuses at once, every way; and SEQPACKET between sibling guests.
/// </summary>
[Trait("Category", "E2E-Daemon")]
public sealed class DaemonSeqpacketTests(SeqpacketGuestFixture fixture, ITestOutputHelper output) : IClassFixture<SeqpacketGuestFixture>
{
    /// <summary>Random lengths after the eight named ones: "a few hundred".</summary>
    private const int RandomMessages = 250;

    [Fact]
    public Task Guest_initiated_messages_of_every_size_are_echoed_whole_by_a_host_seqpacket_listener() => fixture.RunAsync(output, async () =>
    {
        using var deadline = new CancellationTokenSource(E2ETimeouts.Transfer);
        using var listener = HostVsock.Listen(fixture.UdsPath, 5100, SocketKind.Seqpacket);
        var echo = HostSeqpacket.AcceptAndEchoAsync(listener, deadline.Token);
        var rc = await fixture.Guest.RunStepAsync($"seq-connect,2,5100,{RandomMessages},7", E2ETimeouts.Transfer);
        var result = await fixture.Guest.WaitForMarkerAsync("RESULT", "seq-connect", E2ETimeouts.Step, m => m.Get("port") == "5100");
        output.WriteLine($"guest: {result.Line}");
        var served = await echo;
        output.WriteLine($"host echo: {served}");
        Assert.Equal(0, rc);
        Assert.Equal("1", result.Get("ok"));
        Assert.Equal("1", result.Get("eof"));
        var count = TestPattern.SeqNamedLengths.Length + RandomMessages;
        Assert.Equal($"{count}", result.Get("messages"));
        Assert.Null(served.Error);
        Assert.Equal(count, served.Messages);
        Assert.Equal(TestPattern.Hex(HostSeqpacket.Checksum(count, 7)), TestPattern.Hex(served.Sha));
        Assert.Equal(result.Get("sha"), TestPattern.Hex(served.Sha));
    });

    [Fact]
    public Task Host_initiated_through_uds_path_seqpacket_every_message_is_echoed_whole_by_the_guest() => fixture.RunAsync(output, async () =>
    {
        using var deadline = new CancellationTokenSource(E2ETimeouts.Transfer);
        var count = TestPattern.SeqNamedLengths.Length + RandomMessages;
        var clock = Stopwatch.StartNew();
        using (var socket = await HostVsock.ConnectSeqpacketAsync(fixture.UdsPath, SeqpacketGuestFixture.SeqpacketPort, deadline.Token))
        {
            var sha = await HostSeqpacket.ExchangeAsync(socket, count, 8, deadline.Token);
            output.WriteLine($"host: {count} messages echoed in {clock.ElapsedMilliseconds} ms, sha {TestPattern.Hex(sha)}");
            socket.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, await socket.ReceiveAsync(new byte[16], SocketFlags.None, deadline.Token));
        }
        var expected = TestPattern.Hex(HostSeqpacket.Checksum(count, 8));
        var echo = await fixture.Guest.WaitForMarkerAsync("SEQECHO", null, E2ETimeouts.Step, m => m.Get("sha") == expected);
        output.WriteLine($"guest: {echo.Line}");
        Assert.Equal($"{count}", echo.Get("messages"));
        Assert.StartsWith("2:", echo.Get("peer"), StringComparison.Ordinal);
    });

    [Fact]
    public Task A_listener_of_the_other_socket_type_refuses_at_once_every_way() => fixture.RunAsync(output, async () =>
    {
        using var deadline = new CancellationTokenSource(E2ETimeouts.Transfer);

        // Guest SEQPACKET → host STREAM listener, guest STREAM → host SEQPACKET listener: connect(2) on the host
        // fails (EPROTOTYPE), the guest gets an RST.
        var streamListener = fixture.Scenario.Listen($"{fixture.UdsPath}_5101", HostListener.Behaviour.Echo);
        await fixture.Guest.RunStepAsync("seq-connect-refused,2,5101", E2ETimeouts.Step);
        var seqRefused = await fixture.Guest.WaitForMarkerAsync("REFUSED", null, E2ETimeouts.Step, m => m.Get("port") == "5101");
        output.WriteLine($"guest SEQPACKET → host STREAM: {seqRefused.Line}");
        Assert.NotEqual("110", seqRefused.Get("errno")); // ETIMEDOUT: nobody answered
        Assert.True(seqRefused.GetLong("ms") < 1000, seqRefused.Line);
        Assert.Equal(0, streamListener.Accepted);
        using (HostVsock.Listen(fixture.UdsPath, 5102, SocketKind.Seqpacket))
        {
            await fixture.Guest.RunStepAsync("connect-refused,2,5102", E2ETimeouts.Step);
            var refused = await fixture.Guest.WaitForMarkerAsync("REFUSED", null, E2ETimeouts.Step, m => m.Get("port") == "5102");
            output.WriteLine($"guest STREAM → host SEQPACKET: {refused.Line}");
            Assert.NotEqual("110", refused.Get("errno"));
            Assert.True(refused.GetLong("ms") < 1000, refused.Line);
        }

        // Host SEQPACKET → guest STREAM listener, host STREAM → guest SEQPACKET listener: the guest answers RST and
        // the daemon closes the host client.
        var clock = Stopwatch.StartNew();
        await Assert.ThrowsAsync<GuestRefusedException>(() => HostVsock.ConnectSeqpacketAsync(fixture.UdsPath, SeqpacketGuestFixture.StreamPort, deadline.Token));
        output.WriteLine($"host SEQPACKET → guest STREAM refused after {clock.ElapsedMilliseconds} ms");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"took {clock.ElapsedMilliseconds} ms");
        clock.Restart();
        await Assert.ThrowsAsync<GuestRefusedException>(() => HostVsock.ConnectAsync(fixture.UdsPath, SeqpacketGuestFixture.SeqpacketPort, deadline.Token));
        output.WriteLine($"host STREAM → guest SEQPACKET refused after {clock.ElapsedMilliseconds} ms");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"took {clock.ElapsedMilliseconds} ms");

        // Both listeners still serve their own type.
        using var stream = await HostVsock.ConnectAsync(fixture.UdsPath, SeqpacketGuestFixture.StreamPort, deadline.Token);
        Assert.True((await PatternTransfer.EchoAsync(stream, 65536, 31, deadline.Token)).IsExactEcho);
        using var seqpacket = await HostVsock.ConnectSeqpacketAsync(fixture.UdsPath, SeqpacketGuestFixture.SeqpacketPort, deadline.Token);
        await HostSeqpacket.ExchangeAsync(seqpacket, TestPattern.SeqNamedLengths.Length, 32, deadline.Token);
    });
}

/// <summary>SEQPACKET between two sibling guests of one daemon: boundaries and MSG_EOR kept, credit enforced by the device.</summary>
[Trait("Category", "E2E-Daemon")]
public sealed class DaemonSeqpacketSiblingTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Sibling_guests_exchange_seqpacket_messages_whole_with_their_record_boundaries()
    {
        await using var scenario = await E2EScenario.CreateAsync();
        await scenario.RunAsync(output, async () =>
        {
            string[] sockets = [scenario.PathFor("vhost3.socket"), scenario.PathFor("vhost4.socket")];
            string[] uds = [scenario.PathFor("vm3.vsock"), scenario.PathFor("vm4.vsock")];
            await scenario.StartDaemonAsync(
                ["--vm", $"guest-cid=3,socket={sockets[0]},uds-path={uds[0]}", "--vm", $"guest-cid=4,socket={sockets[1]},uds-path={uds[1]}"],
                sockets, uds);
            var a = scenario.StartGuest("cid3", sockets[0], "cid", console: true);
            var b = scenario.StartGuest("cid4", sockets[1], "cid;bg:seq-listen-echo,1300,0", console: true);
            await b.WaitForListenerAsync(1300, E2ETimeouts.Boot);
            await a.WaitForMarkerAsync("CID", null, E2ETimeouts.Boot);

            const int Random = 200;
            var rc = await a.RunStepAsync($"seq-connect,4,1300,{Random},9,1", E2ETimeouts.Transfer);
            var result = await a.WaitForMarkerAsync("RESULT", "seq-connect", E2ETimeouts.Step, m => m.Get("seed") == "9");
            output.WriteLine($"cid3 → cid4 → cid3: {result.Line}");
            Assert.Equal(0, rc);
            Assert.Equal("1", result.Get("ok"));
            var count = TestPattern.SeqNamedLengths.Length + Random;
            var sha = TestPattern.Hex(HostSeqpacket.Checksum(count, 9));
            Assert.Equal(sha, result.Get("sha"));
            var echo = await b.WaitForMarkerAsync("SEQECHO", null, E2ETimeouts.Step, m => m.Get("sha") == sha);
            output.WriteLine($"cid4: {echo.Line}");
            Assert.StartsWith("3:", echo.Get("peer"), StringComparison.Ordinal);
            Assert.Equal($"{count / 2}", echo.Get("eors")); // MSG_EOR on the odd messages, kept end to end
        });
    }
}
