using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Vsock.Testing;
using Vsock.Testing.HostSide;
using DaemonProcess = Vsock.Launcher.Tests.Daemon.DaemonProcess;

namespace Vsock.Launcher.Tests.Metrics;

/// <summary>
/// The daemon as its own process with <c>--metrics-listen 127.0.0.1:0</c>: the synthetic guest (VMM and guest) drives
/// streams both ways and two refused connects, and <c>/metrics</c> shows them.
/// </summary>
public sealed partial class MetricsProcessTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private const string Cid = "{guest_cid=\"3\"}";
    private readonly TempDirectory _dir = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public void Dispose()
    {
        _http.Dispose();
        _dir.Dispose();
    }

    [GeneratedRegex(@"serving metrics of VsockActors at (http://127\.0\.0\.1:\d+/metrics)")]
    private static partial Regex ServingLine();

    [Fact]
    public async Task A_scrape_after_traffic_counts_the_bytes_each_way_the_streams_and_the_refused_connects()
    {
        string socket = _dir.File("vhost3.socket");
        string uds = _dir.File("vm3.vsock");
        using var daemon = DaemonProcess.StartDll(null, "--socket", socket, "--uds-path", uds, "--metrics-listen", "127.0.0.1:0");
        Assert.True(daemon.WaitForLine("listening for the VMM"), "the daemon did not start; stderr: " + daemon.Stderr);
        string url = ServingLine().Match(daemon.Stderr).Groups[1].Value;
        Assert.NotEmpty(url);

        var before = await ScrapeAsync(url);
        Assert.Equal(0, before[$"vsock_vmm_sessions_total{Cid}"]);
        Assert.Equal(0, before[$"vsock_connections_open{Cid}"]);

        using var cts = new CancellationTokenSource(Timeout);
        byte[] toGuest = TestPattern.RandomBytes(100_000, 1), fromGuest = TestPattern.RandomBytes(50_000, 2), toHost = TestPattern.RandomBytes(30_000, 3), fromHost = TestPattern.RandomBytes(20_000, 4);
        await using (var guest = SyntheticGuest.Connect(socket))
        {
            // Host-initiated: CONNECT 5000, 100 kB to the guest, 50 kB back.
            using var guestListener = guest.Listen(5000);
            using var client = await HostVsock.ConnectAsync(uds, 5000, cts.Token);
            var accepted = await guestListener.AcceptAsync(cts.Token);
            await client.SendAllAsync(toGuest, cts.Token);
            Assert.Equal(toGuest, await accepted.ReadExactlyAsync(toGuest.Length, cts.Token));
            await accepted.WriteAsync(fromGuest, cts.Token);
            Assert.Equal(fromGuest, await client.ReadExactlyAsync(fromGuest.Length, cts.Token));

            // Guest-initiated: to CID 2 port 6000, where a host program listens on uds_6000; 30 kB out, 20 kB back.
            using var hostListener = HostVsock.Listen(uds, 6000);
            var connected = await guest.ConnectAsync(2, 6000, Timeout, cts.Token);
            using var server = await hostListener.AcceptAsync(cts.Token);
            await connected.WriteAsync(toHost, cts.Token);
            Assert.Equal(toHost, await server.ReadExactlyAsync(toHost.Length, cts.Token));
            await server.SendAllAsync(fromHost, cts.Token);
            Assert.Equal(fromHost, await connected.ReadExactlyAsync(fromHost.Length, cts.Token));

            // Refused both ways: no host listener on 7000; no guest listener on 7001 (the host client is closed).
            await Assert.ThrowsAsync<GuestConnectionRefusedException>(() => guest.ConnectAsync(2, 7000, Timeout, cts.Token));
            var (refused, reply) = await HostVsock.SendConnectAsync(uds, 7001, cts.Token);
            using (refused)
                Assert.Equal("", reply);

            // Both streams closed by the guest (SHUTDOWN, then the daemon's RST: a normal close, not a reset).
            await accepted.CloseAsync();
            await connected.CloseAsync();

            var after = await ScrapeUntilAsync(url, s => s[$"vsock_connections_open{Cid}"] == 0);
            Assert.InRange(after[$"vsock_rx_bytes_total{Cid}"], toGuest.Length + fromHost.Length, long.MaxValue);
            Assert.InRange(after[$"vsock_tx_bytes_total{Cid}"], fromGuest.Length + toHost.Length, long.MaxValue);
            Assert.InRange(after[$"vsock_rx_packets_total{Cid}"], 1 + (toGuest.Length + fromHost.Length) / 65536, long.MaxValue);
            Assert.InRange(after[$"vsock_tx_packets_total{Cid}"], 1 + (fromGuest.Length + toHost.Length) / 65536, long.MaxValue);
            Assert.Equal(2, after[$"vsock_connections_opened_total{Cid}"]);
            Assert.Equal(2, after[$"vsock_connections_refused_total{Cid}"]);
            Assert.Equal(0, after[$"vsock_connections_reset_total{Cid}"]);
            Assert.Equal(1, after[$"vsock_vmm_sessions_total{Cid}"]);
            Assert.Equal(0, after[$"vsock_vmm_disconnects_total{Cid}"]);
            Assert.Equal(0, after[$"vsock_device_restarts_total{Cid}"]);
            Assert.Equal(0, after[$"vsock_sibling_packets_sent_total{Cid}"]);
        }

        // The synthetic VMM went away.
        var gone = await ScrapeUntilAsync(url, s => s[$"vsock_vmm_disconnects_total{Cid}"] == 1);
        Assert.Equal(1, gone[$"vsock_vmm_sessions_total{Cid}"]);

        daemon.Signal("-TERM");
        Assert.Equal(0, daemon.WaitForExit());
    }

    [Fact]
    public void An_address_in_use_is_one_critical_line_and_exit_status_1()
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        string endpoint = taken.LocalEndPoint!.ToString()!;

        using var daemon = DaemonProcess.StartDll(null,
            "--socket", _dir.File("v.socket"), "--uds-path", _dir.File("u.vsock"), "--metrics-listen", endpoint);

        Assert.Equal(1, daemon.WaitForExit());
        Assert.Contains(daemon.StderrLines, l => l.Contains($"cannot serve metrics on {endpoint}: Address already in use", StringComparison.Ordinal));
        Assert.DoesNotContain(daemon.StderrLines, l => l.Contains("listening for the VMM", StringComparison.Ordinal));
    }

    /// <summary>Every series of a scrape: <c>name{labels}</c> → value (comments checked to be HELP or TYPE).</summary>
    private async Task<Dictionary<string, long>> ScrapeAsync(string url)
    {
        using var response = await _http.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        string text = await response.Content.ReadAsStringAsync();
        var series = new Dictionary<string, long>();
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith('#'))
            {
                Assert.Matches(@"^# (HELP|TYPE) vsock_[a-z_]+ ", line);
                continue;
            }
            int space = line.LastIndexOf(' ');
            series.Add(line[..space], long.Parse(line[(space + 1)..], CultureInfo.InvariantCulture));
        }
        return series;
    }

    private async Task<Dictionary<string, long>> ScrapeUntilAsync(string url, Func<Dictionary<string, long>, bool> done)
    {
        DateTime deadline = DateTime.UtcNow + Timeout;
        while (true)
        {
            var series = await ScrapeAsync(url);
            if (done(series) || DateTime.UtcNow > deadline)
                return series;
            await Task.Delay(50);
        }
    }
}
