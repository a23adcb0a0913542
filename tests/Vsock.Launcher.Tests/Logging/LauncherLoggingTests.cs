using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Vsock.Launcher.Logging;
using AkkaLevel = Akka.Event.LogLevel;

namespace Vsock.Launcher.Tests.Logging;

public class LauncherLoggingTests
{
    [Theory]
    [InlineData(LogLevel.Trace, "DEBUG")]
    [InlineData(LogLevel.Debug, "DEBUG")]
    [InlineData(LogLevel.Information, "INFO")]
    [InlineData(LogLevel.Warning, "WARNING")]
    [InlineData(LogLevel.Error, "ERROR")]
    [InlineData(LogLevel.None, "OFF")]
    public void Akka_level_follows_the_resolved_level(LogLevel level, string akkaLevel)
    {
        Assert.Equal(akkaLevel, LauncherLogging.AkkaLogLevel(level));
    }

    [Theory]
    [InlineData(LogLevel.Debug, AkkaLevel.DebugLevel, true)]
    [InlineData(LogLevel.Warning, AkkaLevel.InfoLevel, false)]
    [InlineData(LogLevel.Warning, AkkaLevel.WarningLevel, true)]
    [InlineData(LogLevel.None, AkkaLevel.ErrorLevel, false)]
    public async Task An_actor_system_configured_like_the_launcher_has_the_serilog_logger_at_that_level(LogLevel level, AkkaLevel probe, bool enabled)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Services.AddAkka("logging-test", (akka, _) => akka.WithLauncherLogging(level));
        using IHost host = builder.Build();
        await host.StartAsync();
        try
        {
            ActorSystem system = host.Services.GetRequiredService<ActorSystem>();

            Assert.Equal(["Akka.Logger.Serilog.SerilogLogger, Akka.Logger.Serilog"], system.Settings.Loggers.Select(ShortName));
            Assert.Equal(enabled, system.EventStream.LogLevel <= probe);
            Assert.Equal(enabled, Akka.Event.Logging.GetLogger(system, "probe").IsEnabled(probe));
        }
        finally
        {
            await host.StopAsync();
        }
    }

    /// <summary>"Type, Assembly" of an assembly-qualified name.</summary>
    private static string ShortName(string assemblyQualifiedName) =>
        string.Join(", ", assemblyQualifiedName.Split(',').Take(2).Select(part => part.Trim()));
}
