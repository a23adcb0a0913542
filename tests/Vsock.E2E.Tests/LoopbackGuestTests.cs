using System.Globalization;

namespace Vsock.E2E.Tests;

/// <summary>The guest side of the rig, validated without the daemon (vsock_loopback, CID 1).</summary>
public sealed class LoopbackGuestTests(LoopbackGuestFixture guest, ITestOutputHelper output) : IClassFixture<LoopbackGuestFixture>
{
    private static string Sha(long bytes, ulong seed) => TestPattern.Hex(TestPattern.Checksum(bytes, seed));

    [Fact]
    public void Guest_boots_runs_every_step_and_powers_off()
    {
        var done = guest.Single("DONE", null);
        Assert.Equal("0", done.Get("failures"));
        Assert.Empty(guest.Markers("FAIL"));
        output.WriteLine($"boot to BOOTED marker: {guest.TimeToBooted.TotalSeconds:0.00} s (guest uptime {guest.Single("BOOTED", null).Get("uptime")} s); "
            + $"whole script: {guest.TimeToDone.TotalSeconds:0.00} s");
    }

    [Fact]
    public void Guest_without_a_vhost_device_has_the_loopback_cid()
    {
        Assert.Equal("1", guest.Single("CID", null).Words[0]);
    }

    [Theory]
    [InlineData(1048576L, 1UL)]
    [InlineData(1000L, 9UL)]
    public void Guest_pattern_matches_the_host_implementation(long bytes, ulong seed)
    {
        var pattern = guest.Single("RESULT", "pattern", m => m.Get("seed") == seed.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(bytes, pattern.GetLong("bytes"));
        Assert.Equal(Sha(bytes, seed), pattern.Get("sha"));
    }

    [Fact]
    public void Echo_over_loopback_returns_every_byte()
    {
        var connect = guest.Single("RESULT", "connect", m => m.Get("seed") == "1");
        Assert.Equal("1", connect.Get("ok"));
        Assert.Equal(LoopbackGuestFixture.EchoBytes, connect.GetLong("sent"));
        Assert.Equal(LoopbackGuestFixture.EchoBytes, connect.GetLong("recv"));
        Assert.Equal(Sha(LoopbackGuestFixture.EchoBytes, 1), connect.Get("sha"));
        Assert.Equal(connect.Get("sha"), connect.Get("rsha"));
        var echo = guest.Single("ECHO", null, m => m.GetLong("bytes") == LoopbackGuestFixture.EchoBytes);
        Assert.Equal(connect.Get("sha"), echo.Get("sha"));
        var server = guest.Single("RESULT", "listen-echo", m => m.Get("port") == "5000");
        Assert.Equal("3", server.Get("conns"));
        Assert.Equal("0", server.Get("failed"));
    }

    [Fact]
    public void Concurrent_clients_each_get_their_own_stream_back()
    {
        Assert.Equal("2", guest.Single("RESULT", "connect-many", null).Get("ok"));
        foreach (var seed in new[] { 7UL, 8UL })
        {
            var client = guest.Single("RESULT", "connect", m => m.Get("seed") == seed.ToString(CultureInfo.InvariantCulture));
            Assert.Equal("1", client.Get("ok"));
            Assert.Equal(Sha(65536, seed), client.Get("rsha"));
        }
    }

    [Fact]
    public void Send_to_a_sink_gets_the_checksum_reply()
    {
        var send = guest.Single("RESULT", "send", m => m.Get("port") == "5001");
        Assert.Equal("1", send.Get("ok"));
        var expected = Sha(LoopbackGuestFixture.EchoBytes, 3);
        Assert.Equal($"SINK bytes={LoopbackGuestFixture.EchoBytes} sha={expected}", send.Get("reply"));
        Assert.Equal(expected, guest.Single("RESULT", "sink", m => m.Get("port") == "5001").Get("sha"));
    }

    [Fact]
    public void Connect_to_a_port_without_listener_is_refused_at_once()
    {
        var refused = guest.Single("REFUSED", null);
        Assert.Equal("104", refused.Get("errno")); // ECONNRESET: the loopback transport answers with RST
        Assert.True(refused.GetLong("ms") < 500, refused.Line);
    }

    [Fact]
    public void Listener_that_closed_mid_transfer_serves_the_next_connection()
    {
        var closed = guest.Single("CLOSED-MID", null);
        Assert.Equal("5002", closed.Get("port"));
        Assert.True(closed.GetLong("read") >= 4096, closed.Line);
        guest.Single("RESULT", "connect-close-mid", null);
        var next = guest.Single("RESULT", "connect", m => m.Get("port") == "5002");
        Assert.Equal("1", next.Get("ok"));
        Assert.Equal(Sha(65536, 4), next.Get("rsha"));
    }

    [Fact]
    public void Latency_and_throughput_modes_report_numbers()
    {
        var latency = guest.Single("RESULT", "latency", null);
        Assert.Equal("200", latency.Get("n"));
        Assert.True(latency.GetLong("p50us") > 0, latency.Line);
        var throughput = guest.Single("RESULT", "throughput", null);
        Assert.Equal("4194304", throughput.Get("bytes"));
        Assert.StartsWith("SINK bytes=4194304 ", throughput.Get("reply"), StringComparison.Ordinal);
        output.WriteLine($"loopback inside the guest: {latency.Line}");
        output.WriteLine($"loopback inside the guest: {throughput.Line}");
    }

    [Fact]
    public void Message_mode_sends_its_words_as_one_line()
    {
        var message = guest.Single("RESULT", "message", null);
        var text = "hello from the guest\n";
        var sha = TestPattern.Hex(TestPattern.Fnv1a(TestPattern.FnvOffset, System.Text.Encoding.ASCII.GetBytes(text)));
        Assert.Equal($"SINK bytes={text.Length} sha={sha}", message.Get("reply"));
        Assert.Contains("sent=\"hello from the guest\"", message.Line, StringComparison.Ordinal);
    }
}
