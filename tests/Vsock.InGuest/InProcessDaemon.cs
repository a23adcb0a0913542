using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Vsock.Actors.Hosting;
using Vsock.Actors.Settings;

namespace Vsock.InGuest;

/// <summary>
/// The daemon inside this process, started the way the launcher starts it: a generic host (no defaults)
/// with Akka.Hosting and <see cref="VsockHostingExtensions.WithVsockDevices"/>. Ready once every VM's
/// vhost-user socket exists. Its log (warnings and up) goes to stderr, which the guest console shows.
/// </summary>
internal sealed class InProcessDaemon : IAsyncDisposable
{
    private readonly IHost host;

    private InProcessDaemon(IHost host) => this.host = host;

    public static async Task<InProcessDaemon> StartAsync(IReadOnlyList<VmSettings> vms, TimeSpan timeout)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddAkka("inguest", (akka, _) => akka
            .AddHocon("akka.loglevel = WARNING", HoconAddMode.Prepend)
            .WithVsockDevices(vms));
        var host = builder.Build();
        var daemon = new InProcessDaemon(host);
        try
        {
            await host.StartAsync();
            var deadline = DateTime.UtcNow + timeout;
            while (!vms.All(vm => Path.Exists(vm.Socket)))
            {
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException($"no vhost-user socket after {timeout.TotalSeconds:0} s: {string.Join(", ", vms.Select(v => v.Socket))}");
                await Task.Delay(10);
            }
            return daemon;
        }
        catch
        {
            await daemon.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await host.StopAsync(timeout.Token);
        host.Dispose();
    }
}
