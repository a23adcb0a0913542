using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Vsock.Actors.Hosting;
using Vsock.Actors.Settings;

namespace Vsock.Testing.Daemon;

/// <summary>
/// The real daemon in the test's process, started as the launcher starts it: a generic host without defaults (no
/// appsettings.json, no DOTNET_ settings of the machine), Akka.Hosting, <see cref="DeviceReadiness"/> and
/// <see cref="VsockHostingExtensions.WithVsockDevices"/>, ready once every VM listens. A test then plays the VMM and
/// the guest with <see cref="SyntheticGuest"/> and the host programs with <see cref="HostSide.HostVsock"/>, in
/// milliseconds and without a VM. Left out of the launcher: its Serilog output (here warnings and up go to stderr;
/// <c>VSOCK_TEST_LOG=DEBUG</c> shows the daemon's own log), the systemd notifications and the metrics endpoint.
/// </summary>
public sealed class InProcessDaemon : IAsyncDisposable
{
    /// <summary>How long <see cref="StartAsync(TestVms, TimeSpan?)"/> waits for every VM to listen unless told.</summary>
    public static readonly TimeSpan DefaultStartTimeout = TimeSpan.FromSeconds(30);

    private readonly IHost _host;
    private readonly TestVms? _owned;

    private InProcessDaemon(IHost host, IReadOnlyList<VmSettings> vms, TestVms? owned)
    {
        _host = host;
        Vms = vms;
        _owned = owned;
    }

    /// <summary>The host's services (the actor system's <see cref="ActorRegistry"/>, for one).</summary>
    public IServiceProvider Services => _host.Services;

    public ActorSystem ActorSystem => Services.GetRequiredService<ActorSystem>();

    public IReadOnlyList<VmSettings> Vms { get; }

    public VmSettings this[int index] => Vms[index];

    /// <summary>
    /// Starts a daemon serving <paramref name="vmCount"/> VMs with CIDs 3, 4, ... in a temporary directory of its own
    /// (<see cref="TestVms.Create"/>), removed on dispose.
    /// </summary>
    public static Task<InProcessDaemon> StartAsync(int vmCount = 1, Func<VmSettings, VmSettings>? adjust = null) =>
        StartAsync(TestVms.Create(vmCount, adjust), owned: true, DefaultStartTimeout);

    /// <summary>Starts a daemon serving <paramref name="vms"/> (which the caller disposes).</summary>
    public static Task<InProcessDaemon> StartAsync(TestVms vms, TimeSpan? timeout = null) =>
        StartAsync(vms, owned: false, timeout ?? DefaultStartTimeout);

    /// <summary>Starts a daemon serving <paramref name="vms"/> as they are (sockets wherever they say, the AF_VSOCK backend too).</summary>
    public static async Task<InProcessDaemon> StartAsync(IReadOnlyList<VmSettings> vms, TimeSpan? timeout = null)
    {
        var readiness = new DeviceReadiness(vms.Select(vm => vm.GuestCid));
        return await StartAsync(vms, readiness, null, timeout ?? DefaultStartTimeout);
    }

    private static async Task<InProcessDaemon> StartAsync(TestVms vms, bool owned, TimeSpan timeout)
    {
        try
        {
            return await StartAsync(vms.Settings, vms.Readiness, owned ? vms : null, timeout);
        }
        catch
        {
            if (owned)
                vms.Dispose();
            throw;
        }
    }

    private static async Task<InProcessDaemon> StartAsync(IReadOnlyList<VmSettings> vms, DeviceReadiness readiness, TestVms? owned, TimeSpan timeout)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var akkaLevel = Environment.GetEnvironmentVariable("VSOCK_TEST_LOG") ?? "WARNING";
        if (akkaLevel != "WARNING")
            builder.Logging.SetMinimumLevel(LogLevel.Trace);
        builder.Services.AddAkka("vsock-test", (akka, _) => akka
            .AddHocon($"akka.loglevel = {akkaLevel}", HoconAddMode.Prepend)
            .WithDeviceReadiness(readiness) // as LauncherHost: before the devices, so none is missed
            .WithVsockDevices(vms));
        var host = builder.Build();
        var daemon = new InProcessDaemon(host, vms, owned);
        try
        {
            await host.StartAsync();
            await TestVms.WaitForReadinessAsync(vms, readiness, timeout);
            return daemon;
        }
        catch
        {
            await daemon.StopAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _owned?.Dispose();
    }

    private async Task StopAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _host.StopAsync(timeout.Token);
        _host.Dispose();
    }
}
