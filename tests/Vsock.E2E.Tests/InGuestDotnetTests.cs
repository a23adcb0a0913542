using System.Globalization;
using Vsock.E2E.Tests.Rig;

namespace Vsock.E2E.Tests;

/// <summary>.NET code from this repository running inside a guest, against the guest kernel's AF_VSOCK.</summary>
[Trait("Category", "E2E-InGuest")]
public sealed class InGuestDotnetTests(InGuestDotnetFixture guest, ITestOutputHelper output) : IClassFixture<InGuestDotnetFixture>
{
    private static string Sha(long bytes, ulong seed) => TestPattern.Hex(TestPattern.Checksum(bytes, seed));

    [Fact]
    public void Vsock_interop_listens_connects_accepts_and_moves_data_for_real()
    {
        var result = guest.Passed("vsock-selftest");
        Assert.Equal(InGuestDotnetFixture.Bytes, result.GetLong("bytes"));
        Assert.Equal("1", result.Get("peer_cid"));
        Assert.NotEqual(result.Get("port"), result.Get("peer_port"));
        // ToSocket hands over a blocking fd, so synchronous calls work next to async ones.
        Assert.Equal("1", result.Get("blocking"));
        // The same stream the C guest program and the rig compute: client to server seed 1, back seed 2.
        Assert.Equal(Sha(InGuestDotnetFixture.Bytes, 1), result.Get("c2s_sha"));
        Assert.Equal(Sha(InGuestDotnetFixture.Bytes, 2), result.Get("s2c_sha"));
        output.WriteLine(guest.Guest.ConsoleText);
        var runs = guest.Markers("HOSTRUN").Select(r => r.Get("secs") + " s");
        output.WriteLine($"QEMU start to host root: {guest.TimeToHostRoot.TotalSeconds:0.00} s; to DONE: {guest.TimeToDone.TotalSeconds:0.00} s; "
            + $"to QEMU exit: {guest.TimeToExit.TotalSeconds:0.00} s; host commands (forward-selftest, vsock-selftest, probe): {string.Join(", ", runs)}");
    }

    [Fact]
    public void Forwarding_backend_carries_guest_streams_to_forward_cid_both_ways()
    {
        var result = guest.Passed("forward-selftest");
        Assert.Equal("3", result.Get("guest_cid"));
        // The synthetic guest connected to CID 2; the daemon connected to forward-cid 1, whose listener
        // exchanged seed 1 (to the host) and seed 2 (to the guest), each side half-closing to EOF.
        Assert.Equal(Sha(InGuestDotnetFixture.Bytes, 1), result.Get("g2h_to_host_sha"));
        Assert.Equal(Sha(InGuestDotnetFixture.Bytes, 2), result.Get("g2h_to_guest_sha"));
        output.WriteLine(result.Line);
    }

    [Fact]
    public void Forwarding_backend_carries_forward_listen_connections_into_the_guest()
    {
        var result = guest.Passed("forward-selftest");
        // A peer on CID 1 connected to the forward-listen port; the guest accepted it from CID 2 (checked in
        // the guest) on a port allocated from 1024 up (docs/COMPATIBILITY.md).
        Assert.True(result.GetLong("h2g_peer_port") >= 1024, result.Line);
        Assert.Equal(Sha(InGuestDotnetFixture.Bytes, 3), result.Get("h2g_to_host_sha"));
        Assert.Equal(Sha(InGuestDotnetFixture.Bytes, 4), result.Get("h2g_to_guest_sha"));
    }

    [Fact]
    public void Forwarding_backend_refuses_a_guest_connect_nobody_listens_for_and_stays_clean()
    {
        var result = guest.Passed("forward-selftest");
        Assert.True(double.Parse(result.Get("refused_ms"), CultureInfo.InvariantCulture) < 3000, result.Line);
        Assert.Equal("0", result.Get("violations"));
    }

    [Fact]
    public void Forwarding_backend_carries_seqpacket_messages_whole_both_ways_with_their_record_boundaries()
    {
        var result = guest.Passed("forward-selftest");
        output.WriteLine(result.Line);
        // Guest → CID 2 → forward-cid 1 (a SOCK_SEQPACKET peer echoing), and a peer → forward-listen-seqpacket →
        // the guest's SEQPACKET listener (echoing): the issue's lengths and 24 seeded random ones, every message
        // checked length, bytes and MSG_EOR (odd ones), on a guest kernel (6.1) whose AF_VSOCK cannot peek.
        const int Count = 8 + 24;
        Assert.Equal($"{Count}", result.Get("seq_g2h_messages"));
        Assert.Equal($"{Count / 2}", result.Get("seq_g2h_eors"));
        Assert.Equal(TestPattern.Hex(HostSeqpacket.Checksum(Count, 21)), result.Get("seq_g2h_sha"));
        Assert.Equal($"{Count}", result.Get("seq_h2g_messages"));
        Assert.Equal(TestPattern.Hex(HostSeqpacket.Checksum(Count, 22)), result.Get("seq_h2g_sha"));
    }

    [Fact]
    public void Connect_to_a_port_without_listener_is_refused_at_once()
    {
        var result = guest.Passed("vsock-selftest");
        // vsock_loopback answers with RST: ECONNRESET (104); ECONNREFUSED (111) is the other honest answer.
        Assert.Contains(result.Get("refused_errno"), new[] { "104", "111" });
        Assert.True(double.Parse(result.Get("refused_ms"), CultureInfo.InvariantCulture) < 1000, result.Line);
    }

    [Fact]
    public void Host_commands_run_in_the_read_only_host_root_with_a_clean_environment()
    {
        var probe = guest.Single("PROBE", null);
        Assert.Equal(HostRoot.GuestPath(RepoPaths.Root), probe.Get("cwd"));
        Assert.Equal("/tmp", probe.Get("home"));
        Assert.Equal("/tmp", probe.Get("cli_home"));
        Assert.Equal(guest.Token, probe.Get("token"));
        Assert.Equal("1", probe.Get("readonly_root"));
        Assert.Equal("1", probe.Get("tmp_hidden"));
        Assert.Equal("0", probe.Get("vt_vars"));
    }

    [Fact]
    public void Every_host_command_reports_its_status_and_the_guest_powers_off()
    {
        var runs = guest.Markers("HOSTRUN");
        Assert.Equal(["0", "0", "0"], runs.Select(r => r.Get("rc")));
        Assert.Empty(guest.Markers("FAIL"));
        Assert.Equal("0", guest.Single("DONE", null).Get("failures"));
        Assert.True(guest.Guest.HasExited);
    }
}
