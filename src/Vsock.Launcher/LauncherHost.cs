using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serilog;
using Serilog.Events;
using Vsock.Actors.Hosting;
using Vsock.Launcher.Configuration;

namespace Vsock.Launcher;

/// <summary>
/// The generic host around the actor system: Serilog on stderr, Akka.Hosting, and the console
/// lifetime, which turns SIGINT and SIGTERM into a host stop; Akka.Hosting answers that stop with
/// CoordinatedShutdown, so every device actor's PostStop runs before the process exits.
/// </summary>
internal static class LauncherHost
{
    private const string OutputTemplate = "[{Timestamp:yyyy-MM-ddTHH:mm:ss.fffZ} {Level:u3} {Source}] {Message:lj}{NewLine}{Exception}";

    /// <returns>0 after a stop asked for by a signal; 1 if the devices failed to start or the actor system stopped on its own.</returns>
    public static async Task<int> RunAsync(LaunchOptions options)
    {
        // DisableDefaults: a device daemon must not pick up appsettings.json or DOTNET_* settings
        // from whatever directory it is started in; everything comes from the command line.
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            DisableDefaults = true,
            ApplicationName = CommandLine.Name,
        });
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(options.LogLevel);
        builder.Services.AddSerilog(logger => logger
            .MinimumLevel.Is(ToSerilog(options.LogLevel))
            .Enrich.FromLogContext()
            .Enrich.With(new LogSourceEnricher(CommandLine.Name))
            .WriteTo.Console(outputTemplate: OutputTemplate, standardErrorFromLevel: LevelAlias.Minimum,
                formatProvider: System.Globalization.CultureInfo.InvariantCulture));

        // Set once the devices' own start-up (inside WithVsockDevices) has completed: Akka.Hosting
        // logs a failed start and stops the host, which would otherwise look like a clean stop.
        bool started = false;
        builder.Services.AddAkka(CommandLine.Name, (akka, _) =>
        {
            akka.ConfigureLoggers(loggers =>
            {
                loggers.LogLevel = ToAkka(options.LogLevel);
                loggers.ClearLoggers();
                loggers.AddLoggerFactory();
            });
            akka.AddHocon($"akka.stdout-logger-class = \"{StandardErrorLogger.ClassName}\"", HoconAddMode.Prepend);
            akka.WithVsockDevices(options.Vms, options.Cluster);
            akka.AddStartup((_, _) => Volatile.Write(ref started, true));
        });

        using IHost host = builder.Build();
        Microsoft.Extensions.Logging.ILogger log = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger(CommandLine.Name);
        foreach (string warning in options.Warnings)
        {
            log.LogWarning("{Warning}", warning);
        }

        try
        {
            await host.StartAsync();
            if (Volatile.Read(ref started))
            {
                log.LogInformation("{Name} {Version} started with {Count} device(s): {Devices}{Cluster}",
                    CommandLine.Name, CommandLine.Version, options.Vms.Count, string.Join("; ", options.Vms),
                    options.Cluster is null ? "" : $"; {options.Cluster}");
            }

            await host.WaitForShutdownAsync();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The host has already logged the exception with its stack; this is the summary line.
            log.LogCritical("the devices failed to start: {Message}", e.Message);
            return 1;
        }

        if (!Volatile.Read(ref started))
        {
            log.LogCritical("the devices failed to start");
            return 1;
        }

        CoordinatedShutdown.Reason? reason = CoordinatedShutdown.Get(host.Services.GetRequiredService<ActorSystem>()).ShutdownReason;
        if (reason is null or CoordinatedShutdown.ClrExitReason)
        {
            return 0;
        }

        log.LogCritical("the actor system shut down on its own ({Reason})", reason);
        return 1;
    }

    private static LogEventLevel ToSerilog(LogLevel level) => level switch
    {
        LogLevel.Trace => LogEventLevel.Verbose,
        LogLevel.Debug => LogEventLevel.Debug,
        LogLevel.Information => LogEventLevel.Information,
        LogLevel.Warning => LogEventLevel.Warning,
        LogLevel.Error => LogEventLevel.Error,
        LogLevel.Critical => LogEventLevel.Fatal,
        _ => LevelAlias.Off,
    };

    private static Akka.Event.LogLevel ToAkka(LogLevel level) => level switch
    {
        LogLevel.Trace or LogLevel.Debug => Akka.Event.LogLevel.DebugLevel,
        LogLevel.Information => Akka.Event.LogLevel.InfoLevel,
        LogLevel.Warning => Akka.Event.LogLevel.WarningLevel,
        _ => Akka.Event.LogLevel.ErrorLevel,
    };
}
