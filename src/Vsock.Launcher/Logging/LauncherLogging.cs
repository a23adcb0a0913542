using Akka.Hosting;
using Akka.Logger.Serilog;
using Microsoft.Extensions.Logging;
using Serilog;
using Serilog.Core;
using Serilog.Events;
using Vsock.Launcher.Configuration;

namespace Vsock.Launcher.Logging;

/// <summary>
/// Where log lines go: one Serilog logger on stderr (<see cref="LogLineFormatter"/>) for the launcher's
/// own lines (through Microsoft.Extensions.Logging) and for Akka's (through Akka.Logger.Serilog's
/// <see cref="SerilogLogger"/>, which writes to Serilog's static <see cref="Log.Logger"/>). The level
/// resolved from <c>--log-level</c> (<see cref="LogLevelResolver"/>) is Serilog's minimum and Akka's
/// <c>akka.loglevel</c>, so an actor's <c>_log.Debug(...)</c> below the level is never even formatted.
/// </summary>
internal static class LauncherLogging
{
    /// <summary>The logger for the process; also installed as <see cref="Log.Logger"/>, which Akka's Serilog logger writes to.</summary>
    public static Logger CreateLogger(LogLevel level)
    {
        Logger logger = new LoggerConfiguration()
            .MinimumLevel.Is(ToSerilog(level))
            .WriteTo.Console(new LogLineFormatter(CommandLine.Name), standardErrorFromLevel: LevelAlias.Minimum)
            .CreateLogger();
        Log.Logger = logger;
        return logger;
    }

    /// <summary>Akka's loggers: only <see cref="SerilogLogger"/>, at the resolved level; stderr before it starts and after it stops.</summary>
    public static AkkaConfigurationBuilder WithLauncherLogging(this AkkaConfigurationBuilder akka, LogLevel level)
    {
        akka.ConfigureLoggers(loggers =>
        {
            loggers.ClearLoggers();
            loggers.AddLogger<SerilogLogger>();
        });
        // After ConfigureLoggers, so these win: Akka.Hosting's typed level has no "off".
        return akka.AddHocon(
            $"""
            akka.loglevel = {AkkaLogLevel(level)}
            akka.stdout-logger-class = "{StandardErrorLogger.ClassName}"
            """,
            HoconAddMode.Prepend);
    }

    /// <summary><c>akka.loglevel</c> for a resolved level; trace is Akka's debug, the lowest it has.</summary>
    internal static string AkkaLogLevel(LogLevel level) => level switch
    {
        LogLevel.Trace or LogLevel.Debug => "DEBUG",
        LogLevel.Information => "INFO",
        LogLevel.Warning => "WARNING",
        LogLevel.Error or LogLevel.Critical => "ERROR",
        _ => "OFF",
    };

    internal static LogEventLevel ToSerilog(LogLevel level) => level switch
    {
        LogLevel.Trace => LogEventLevel.Verbose,
        LogLevel.Debug => LogEventLevel.Debug,
        LogLevel.Information => LogEventLevel.Information,
        LogLevel.Warning => LogEventLevel.Warning,
        LogLevel.Error => LogEventLevel.Error,
        LogLevel.Critical => LogEventLevel.Fatal,
        _ => LevelAlias.Off,
    };
}
