using System.Globalization;
using Serilog.Events;
using Serilog.Formatting;
using Serilog.Formatting.Display;

namespace Vsock.Launcher.Logging;

/// <summary>
/// One log line: <c>[2026-01-01T12:00:00.000Z INF vsock/vm-3/device] message</c>, then the exception, if any.
/// The third field is the source: for an event from Akka (every one carries Akka.Logger.Serilog's
/// <c>LogSource</c>) the actor path below the user guardian (<c>vsock/vm-3/device</c>, <c>vsock-groups</c>),
/// a system actor's path below the system (<c>system/...</c>), or the name Akka gives a source that is no
/// actor (<c>CoordinatedShutdown (akka://vhost-device-vsock)</c>); for any other event its logger category
/// (<c>SourceContext</c>: the launcher's own lines are <c>vhost-device-vsock</c>). Akka.Logger.Serilog's own
/// <c>SourceContext</c> is the actor's class, which cannot tell one VM's device from another's.
/// The time is when the event was raised (Akka's own timestamp where there is one), in UTC.
/// </summary>
internal sealed class LogLineFormatter : ITextFormatter
{
    private readonly string _userPrefix;
    private readonly string _systemPrefix;

    // The message with strings and enums as they are (`:l`; with `:j` an enum such as Akka's MemberStatus.Up
    // would be a quoted JSON string), other values as Serilog renders them.
    private readonly MessageTemplateTextFormatter _rest = new("{Message:l}{NewLine}{Exception}", CultureInfo.InvariantCulture);

    public LogLineFormatter(string systemName)
    {
        _userPrefix = $"akka://{systemName}/user/";
        _systemPrefix = $"akka://{systemName}/";
    }

    public void Format(LogEvent logEvent, TextWriter output)
    {
        DateTime time = logEvent.Properties.TryGetValue("Timestamp", out var akkaTime) && akkaTime is ScalarValue { Value: DateTime raised }
            ? raised.ToUniversalTime()
            : logEvent.Timestamp.UtcDateTime;
        output.Write('[');
        output.Write(time.ToString("yyyy-MM-ddTHH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        output.Write(' ');
        output.Write(Abbreviation(logEvent.Level));
        output.Write(' ');
        output.Write(Source(logEvent));
        output.Write("] ");
        _rest.Format(logEvent, output);
    }

    /// <summary>The source field of a line; empty when the event names none.</summary>
    public string Source(LogEvent logEvent)
    {
        if (logEvent.Properties.TryGetValue("LogSource", out var value) && value is ScalarValue { Value: string akkaSource })
        {
            return akkaSource.StartsWith(_userPrefix, StringComparison.Ordinal) ? akkaSource[_userPrefix.Length..]
                : akkaSource.StartsWith(_systemPrefix, StringComparison.Ordinal) ? akkaSource[_systemPrefix.Length..]
                : akkaSource;
        }

        return logEvent.Properties.TryGetValue("SourceContext", out var context) && context is ScalarValue { Value: string category }
            ? category
            : "";
    }

    /// <summary>Serilog's <c>{Level:u3}</c>.</summary>
    private static string Abbreviation(LogEventLevel level) => level switch
    {
        LogEventLevel.Verbose => "VRB",
        LogEventLevel.Debug => "DBG",
        LogEventLevel.Information => "INF",
        LogEventLevel.Warning => "WRN",
        LogEventLevel.Error => "ERR",
        _ => "FTL",
    };
}
