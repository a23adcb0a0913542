using System.Globalization;
using Serilog.Events;
using Serilog.Parsing;
using Vsock.Launcher.Logging;

namespace Vsock.Launcher.Tests.Logging;

public class LogLineFormatterTests
{
    private static readonly LogLineFormatter Formatter = new("vhost-device-vsock");

    private static LogEvent Event(LogEventLevel level, string template, params (string Name, object Value)[] properties) =>
        new(new DateTimeOffset(2026, 1, 2, 3, 4, 5, 678, TimeSpan.FromHours(2)), level, null, new MessageTemplateParser().Parse(template),
            properties.Select(p => new LogEventProperty(p.Name, new ScalarValue(p.Value))));

    private static string Line(LogEvent e)
    {
        var output = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        Formatter.Format(e, output);
        return output.ToString();
    }

    [Fact]
    public void An_actor_line_names_its_path_below_user_and_renders_strings_without_quotes()
    {
        var e = Event(LogEventLevel.Information, "device for guest CID {0} listening on {1}",
            ("0", 3), ("1", "/tmp/v3.sock"),
            ("LogSource", "akka://vhost-device-vsock/user/vsock/vm-3/device"), ("SourceContext", "Vsock.Actors.Device.DeviceActor"),
            ("Timestamp", new DateTime(2026, 1, 2, 1, 4, 5, 600, DateTimeKind.Utc)));

        // Akka's own timestamp (when the actor logged), in UTC.
        Assert.Equal("[2026-01-02T01:04:05.600Z INF vsock/vm-3/device] device for guest CID 3 listening on /tmp/v3.sock" + Environment.NewLine, Line(e));
    }

    [Fact]
    public void Sources_that_are_no_user_actor()
    {
        Assert.Equal("system/x", Formatter.Source(Event(LogEventLevel.Debug, "m", ("LogSource", "akka://vhost-device-vsock/system/x"))));
        Assert.Equal("CoordinatedShutdown (akka://vhost-device-vsock)",
            Formatter.Source(Event(LogEventLevel.Debug, "m", ("LogSource", "CoordinatedShutdown (akka://vhost-device-vsock)"))));
        Assert.Equal("vhost-device-vsock", Formatter.Source(Event(LogEventLevel.Debug, "m", ("SourceContext", "vhost-device-vsock"))));
        Assert.Equal("", Formatter.Source(Event(LogEventLevel.Debug, "m")));
    }

    [Theory]
    [InlineData(LogEventLevel.Verbose, "VRB")]
    [InlineData(LogEventLevel.Debug, "DBG")]
    [InlineData(LogEventLevel.Information, "INF")]
    [InlineData(LogEventLevel.Warning, "WRN")]
    [InlineData(LogEventLevel.Error, "ERR")]
    [InlineData(LogEventLevel.Fatal, "FTL")]
    public void A_launcher_line_has_the_event_time_in_utc_and_the_level_in_three_letters(LogEventLevel level, string abbreviation)
    {
        Assert.Equal($"[2026-01-02T01:04:05.678Z {abbreviation} vhost-device-vsock] hello" + Environment.NewLine,
            Line(Event(level, "hello", ("SourceContext", "vhost-device-vsock"))));
    }
}
