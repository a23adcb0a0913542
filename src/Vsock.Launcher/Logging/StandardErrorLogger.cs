using Akka.Event;
using SerilogLevel = Serilog.Events.LogEventLevel;

namespace Vsock.Launcher.Logging;

/// <summary>
/// Akka's "very basic logger" (<c>akka.stdout-logger-class</c>), which Akka calls synchronously before the
/// Serilog logger actor starts and after it stops (during shutdown). The default one writes to stdout in a
/// format of its own; the launcher keeps stdout for <c>--help</c> and <c>--version</c>, so this one hands the
/// event to the same Serilog logger as <see cref="Akka.Logger.Serilog.SerilogLogger"/> does, with the same
/// properties: every line is on stderr and in one format, whichever logger Akka was using at the time.
/// </summary>
public sealed class StandardErrorLogger : MinimalLogger
{
    /// <summary>The value for <c>akka.stdout-logger-class</c>.</summary>
    public static readonly string ClassName = $"{typeof(StandardErrorLogger).FullName}, {typeof(StandardErrorLogger).Assembly.GetName().Name}";

    protected override void Log(object message)
    {
        if (message is not LogEvent logEvent)
            return;
        Serilog.Log.Logger
            .ForContext("LogSource", logEvent.LogSource)
            .ForContext("Timestamp", logEvent.Timestamp)
            .Write(ToSerilog(logEvent.LogLevel()), logEvent.Cause, "{Message:l}", logEvent.Message?.ToString());
    }

    private static SerilogLevel ToSerilog(LogLevel level) => level switch
    {
        LogLevel.DebugLevel => SerilogLevel.Debug,
        LogLevel.InfoLevel => SerilogLevel.Information,
        LogLevel.WarningLevel => SerilogLevel.Warning,
        _ => SerilogLevel.Error,
    };
}
