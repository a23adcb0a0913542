using System.Diagnostics;
using Vsock.Device.Diagnostics;
using Vsock.Device.Tests.TestSupport;

namespace Vsock.Device.Tests.Diagnostics;

/// <summary>The per-VM log's rate limit, on a clock the test moves: a burst per window and topic, then a count.</summary>
public sealed class DeviceLogTests
{
    private readonly RecordingLog _sink = new();
    private long _now = 1_000_000;
    private readonly DeviceLog _log;

    public DeviceLogTests() => _log = new DeviceLog(_sink, () => _now);

    private void Advance(TimeSpan by) => _now += (long)(by.TotalSeconds * Stopwatch.Frequency);

    private int AllowedOf(int attempts, LogTopic topic = LogTopic.BadChain) =>
        Enumerable.Range(0, attempts).Count(_ => _log.Allow(topic));

    [Fact]
    public void A_burst_is_allowed_and_the_rest_of_the_window_is_counted_not_written()
    {
        Assert.Equal(DeviceLog.Burst, AllowedOf(25));
        Assert.Equal(15, _log.SuppressedTotal);
        Assert.Empty(_sink.Lines); // Allow writes nothing itself while the window lasts
    }

    [Fact]
    public void The_first_line_of_the_next_window_reports_how_many_were_suppressed()
    {
        AllowedOf(25);
        Advance(DeviceLog.Window);

        Assert.True(_log.Allow(LogTopic.BadChain));

        var line = Assert.Single(_sink.Warnings);
        Assert.Equal("15 more bad descriptor chain message(s) suppressed in the last 10 s", line);
        Assert.Equal(DeviceLog.Burst - 1, AllowedOf(DeviceLog.Burst)); // a fresh burst, one already taken
    }

    [Fact]
    public void The_window_runs_from_its_first_line_not_from_the_last()
    {
        AllowedOf(DeviceLog.Burst);
        Advance(DeviceLog.Window - TimeSpan.FromMilliseconds(1));
        Assert.False(_log.Allow(LogTopic.BadChain));
        Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(_log.Allow(LogTopic.BadChain));
    }

    [Fact]
    public void A_window_without_suppressed_lines_rolls_over_silently()
    {
        AllowedOf(3);
        Advance(DeviceLog.Window * 3);
        Assert.Equal(DeviceLog.Burst, AllowedOf(DeviceLog.Burst + 1));
        Assert.Empty(_sink.Lines);
    }

    [Fact]
    public void Topics_have_budgets_of_their_own()
    {
        AllowedOf(50, LogTopic.BadChain);
        Assert.Equal(DeviceLog.Burst, AllowedOf(50, LogTopic.CreditViolation));
        Assert.Equal(80, _log.SuppressedTotal);
    }

    [Fact]
    public void A_warning_on_a_topic_is_written_only_while_its_budget_lasts()
    {
        for (var i = 0; i < 12; i++)
            _log.Warning(LogTopic.CreditViolation, $"violation {i}");
        Assert.Equal(Enumerable.Range(0, DeviceLog.Burst).Select(i => $"violation {i}"), _sink.Warnings);

        Advance(DeviceLog.Window);
        _log.Warning(LogTopic.CreditViolation, "later");
        Assert.Equal(["2 more credit violation message(s) suppressed in the last 10 s", "later"], _sink.Warnings.Skip(DeviceLog.Burst));
    }

    [Fact]
    public void Unlimited_lines_go_straight_through()
    {
        for (var i = 0; i < 50; i++)
            _log.Warning("the VMM said something");
        Assert.Equal(50, _sink.Warnings.Count);
        Assert.Equal(0, _log.SuppressedTotal);
    }
}
