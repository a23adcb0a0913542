using System.Diagnostics.Metrics;
using Vsock.Device.Diagnostics;
using Vsock.Launcher.Metrics;

namespace Vsock.Launcher.Tests.Metrics;

/// <summary>The text exposition format 0.0.4 as the endpoint writes it, from a meter read by <see cref="MeterCollector"/>.</summary>
public sealed class PrometheusTextTests : IDisposable
{
    // Each test has its own meter, so tests running side by side do not see each other's instruments.
    private readonly Meter _meter = new($"test-{Guid.NewGuid():N}");
    private readonly MeterCollector _collector;

    public PrometheusTextTests() => _collector = new MeterCollector(_meter.Name);

    public void Dispose()
    {
        _collector.Dispose();
        _meter.Dispose();
    }

    private static KeyValuePair<string, object?> Cid(ulong cid) => new("guest_cid", cid);

    [Theory]
    [InlineData("vsock.rx.bytes", "By", true, "vsock_rx_bytes_total")]
    [InlineData("vsock.tx.packets", "{packet}", true, "vsock_tx_packets_total")]
    [InlineData("vsock.connections.open", "{connection}", false, "vsock_connections_open")]
    [InlineData("vsock.rx.buffer_starvation", "{turn}", true, "vsock_rx_buffer_starvation_total")]
    [InlineData("queue.size", "By", false, "queue_size_bytes")]
    [InlineData("request.duration", "s", false, "request_duration_seconds")]
    [InlineData("requests_total", null, true, "requests_total")]
    [InlineData("cpu.utilization", "1", false, "cpu_utilization_ratio")]
    [InlineData("odd-name..x", "", false, "odd_name_x")]
    [InlineData("9lives", null, false, "_9lives")]
    public void Names_follow_the_OpenTelemetry_to_Prometheus_rules(string instrument, string? unit, bool counter, string expected)
    {
        Assert.Equal(expected, PrometheusText.Name(instrument, unit, counter ? MetricKind.Counter : MetricKind.Gauge));
    }

    [Fact]
    public void Counters_and_gauges_have_help_type_and_one_line_per_series_sorted_by_label()
    {
        _meter.CreateObservableCounter("vsock.rx.bytes", () => new[] { new Measurement<long>(4096, Cid(4)), new Measurement<long>(12, Cid(3)) },
            "By", "Payload bytes delivered");
        _meter.CreateObservableUpDownCounter("vsock.connections.open", () => new Measurement<long>(2, Cid(3)), "{connection}", "Streams open now");
        _meter.CreateObservableGauge("temperature", () => 21.5, "Cel");

        Assert.Equal(
            """
            # HELP vsock_rx_bytes_total Payload bytes delivered
            # TYPE vsock_rx_bytes_total counter
            vsock_rx_bytes_total{guest_cid="3"} 12
            vsock_rx_bytes_total{guest_cid="4"} 4096
            # HELP vsock_connections_open Streams open now
            # TYPE vsock_connections_open gauge
            vsock_connections_open{guest_cid="3"} 2
            # TYPE temperature_Cel gauge
            temperature_Cel 21.5

            """.ReplaceLineEndings("\n"),
            _collector.Collect());
    }

    [Fact]
    public void Label_values_and_help_text_are_escaped()
    {
        _meter.CreateObservableCounter("c", () => new Measurement<long>(1, new KeyValuePair<string, object?>("path", "a\\b\"c\nd")), null,
            "line one\nback\\slash");

        Assert.Equal(
            "# HELP c_total line one\\nback\\\\slash\n# TYPE c_total counter\nc_total{path=\"a\\\\b\\\"c\\nd\"} 1\n",
            _collector.Collect());
    }

    [Fact]
    public void Special_reals_are_written_as_Prometheus_spells_them()
    {
        _meter.CreateObservableGauge("g", () => new[]
        {
            new Measurement<double>(double.PositiveInfinity, new KeyValuePair<string, object?>("k", "a")),
            new Measurement<double>(double.NaN, new KeyValuePair<string, object?>("k", "b")),
            new Measurement<double>(1e-7, new KeyValuePair<string, object?>("k", "c")),
        });

        Assert.Equal("# TYPE g gauge\ng{k=\"a\"} +Inf\ng{k=\"b\"} NaN\ng{k=\"c\"} 1E-07\n", _collector.Collect());
    }

    [Fact]
    public void An_instrument_without_series_and_a_push_instrument_write_nothing()
    {
        _meter.CreateObservableCounter("empty", () => Array.Empty<Measurement<long>>());
        _meter.CreateCounter<long>("pushed").Add(5);

        Assert.Equal(string.Empty, _collector.Collect());
    }

    [Fact]
    public void Values_are_read_at_each_collection()
    {
        long value = 1;
        _meter.CreateObservableCounter("n", () => value);
        Assert.EndsWith("n_total 1\n", _collector.Collect());
        value = 1L << 62; // beyond a double's exact integers: written exactly
        Assert.EndsWith("n_total 4611686018427387904\n", _collector.Collect());
    }

    /// <summary>Every instrument of the VsockActors meter, by its Prometheus name (the README's table), reads its counter.</summary>
    [Fact]
    public void The_vsock_meter_exposes_every_counter_of_a_vm_under_its_documented_name()
    {
        const ulong cid = 4_000_000_001; // a CID no other test registers
        var counters = new DeviceCounters
        {
            RxBytes = 101, RxPackets = 102, TxBytes = 103, TxPackets = 104, RxNotifications = 105, TxNotifications = 106,
            TxKicks = 107, OpenStreams = 108, StreamsOpened = 109, StreamsRefused = 110, StreamsReset = 111,
            CreditStallsTowardGuest = 112, HostSocketFull = 113, RxBufferStarvation = 114, SiblingPacketsSent = 115,
            SiblingPacketsReceived = 116, VmmSessions = 117, VmmDisconnects = 118, DeviceStarts = 3, RxTurns = 119, RxReads = 120,
        };
        VsockMeter.Register(cid, counters);
        using var collector = new MeterCollector(VsockMeter.Name);
        string text;
        try
        {
            text = collector.Collect();
        }
        finally
        {
            VsockMeter.Unregister(cid, counters);
        }

        string[] expected =
        [
            "vsock_rx_bytes_total 101", "vsock_rx_packets_total 102", "vsock_tx_bytes_total 103", "vsock_tx_packets_total 104",
            "vsock_rx_notifications_total 105", "vsock_tx_notifications_total 106", "vsock_tx_kicks_total 107",
            "vsock_connections_open 108", "vsock_connections_opened_total 109", "vsock_connections_refused_total 110",
            "vsock_connections_reset_total 111", "vsock_credit_stalls_guest_total 112", "vsock_credit_stalls_host_total 113",
            "vsock_rx_buffer_starvation_total 114", "vsock_sibling_packets_sent_total 115", "vsock_sibling_packets_received_total 116",
            "vsock_vmm_sessions_total 117", "vsock_vmm_disconnects_total 118", "vsock_device_restarts_total 2",
            "vsock_rx_turns_total 119", "vsock_rx_reads_total 120", "vsock_loop_idle_poll_microseconds_total 0",
        ];
        string[] series = text.Split('\n').Where(l => l.Contains($"{{guest_cid=\"{cid}\"}}", StringComparison.Ordinal))
            .Select(l => l.Replace($"{{guest_cid=\"{cid}\"}}", string.Empty, StringComparison.Ordinal)).ToArray();
        Assert.Equal(expected.Order(), series.Order());
        Assert.Contains("# TYPE vsock_connections_open gauge\n", text);
        Assert.Contains("# TYPE vsock_rx_bytes_total counter\n", text);
    }
}
