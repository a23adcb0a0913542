using System.Net.Sockets;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using Serilog;
using Vsock.Actors.Hosting;
using Vsock.Device.Diagnostics;
using Vsock.Launcher.Cluster;
using Vsock.Launcher.Configuration;
using Vsock.Launcher.Logging;
using Vsock.Launcher.Metrics;
using Vsock.Launcher.Systemd;

namespace Vsock.Launcher;

/// <summary>
/// The generic host around the actor system: Serilog on stderr (<see cref="LauncherLogging"/>), Akka.Hosting,
/// the systemd notifications (<see cref="SystemdNotification"/>), and the console lifetime, which turns SIGINT
/// and SIGTERM into a host stop; Akka.Hosting answers that stop with CoordinatedShutdown, so every device
/// actor's PostStop runs before the process exits.
/// </summary>
internal static class LauncherHost
{
    /// <returns>0 after a stop asked for by a signal; 1 if the devices failed to start or the actor system stopped on its own.</returns>
    public static async Task<int> RunAsync(LaunchOptions options)
    {
        if (options.Cluster is { } cluster && ClusterBindProbe.Check(cluster.Bind) is { } problem)
        {
            Console.Error.WriteLine($"error: cannot listen on {cluster.Bind} for the cluster (--cluster-bind, YAML cluster: bind:): {problem}");
            return 1;
        }

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
        builder.Services.AddSerilog(LauncherLogging.CreateLogger(options.LogLevel), dispose: true);

        // Set once the devices' own start-up (inside WithVsockDevices) has completed: Akka.Hosting
        // logs a failed start and stops the host, which would otherwise look like a clean stop.
        bool started = false;
        var readiness = new DeviceReadiness(options.Vms.Select(vm => vm.GuestCid));
        builder.Services.AddAkka(CommandLine.Name, (akka, _) =>
        {
            akka.WithLauncherLogging(options.LogLevel);
            akka.WithDeviceReadiness(readiness); // before the devices, so none is missed
            akka.WithVsockDevices(options.Vms, options.Cluster);
            akka.AddStartup((_, _) => Volatile.Write(ref started, true));
        });
        builder.Services.AddSingleton(readiness);
        builder.Services.AddSingleton<ISystemdNotifier>(new SystemdNotifier());
        builder.Services.AddHostedService<SystemdNotification>(); // after Akka's: starts once the actor system has

        using IHost host = builder.Build();
        Microsoft.Extensions.Logging.ILogger log = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger(CommandLine.Name);
        foreach (string warning in options.Warnings)
        {
            log.LogWarning("{Warning}", warning);
        }

        // Only with --metrics-listen: without it no listener, no socket, nothing reads the meter.
        MetricsEndpoint? metrics;
        try
        {
            metrics = options.MetricsListen is { } listen ? MetricsEndpoint.StartForMeter(listen, VsockMeter.Name, log) : null;
        }
        catch (SocketException e)
        {
            log.LogCritical("cannot serve metrics on {Endpoint}: {Message}", options.MetricsListen, e.Message);
            return 1;
        }

        using MetricsEndpoint? endpoint = metrics;
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
}
