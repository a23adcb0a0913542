using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Vsock.Actors.Hosting;
using Vsock.Actors.Settings;

namespace Vsock.Integration.Tests;

/// <summary>
/// The real daemon, in process, started exactly as the launcher starts it: a generic host with
/// Akka.Hosting and <see cref="VsockHostingExtensions.WithVsockDevices"/>. Each VM gets its
/// vhost-user socket and uds-path in a fresh temporary directory.
/// </summary>
public sealed class DaemonHost : IAsyncDisposable
{
    private readonly IHost _host;

    private DaemonHost(IHost host, string directory, IReadOnlyList<VmSettings> vms)
    {
        _host = host;
        Directory = directory;
        Vms = vms;
    }

    public string Directory { get; }

    /// <summary>The host's services (the actor system's <c>ActorRegistry</c>, for one).</summary>
    public IServiceProvider Services => _host.Services;

    public IReadOnlyList<VmSettings> Vms { get; }

    public VmSettings this[int index] => Vms[index];

    /// <summary>Starts a daemon serving <paramref name="vmCount"/> VMs with CIDs 3, 4, ...</summary>
    public static async Task<DaemonHost> StartAsync(int vmCount = 1, Func<VmSettings, VmSettings>? adjust = null)
    {
        // Short directory names: unix socket paths are limited to 107 bytes.
        var directory = System.IO.Directory.CreateTempSubdirectory("vsit-").FullName;
        var vms = Enumerable.Range(0, vmCount)
            .Select(i => new VmSettings
            {
                GuestCid = 3 + (ulong)i,
                Socket = Path.Combine(directory, $"vm{i}.sock"),
                UdsPath = Path.Combine(directory, $"vm{i}.vsock"),
            })
            .Select(vm => adjust is null ? vm : adjust(vm))
            .ToList();

        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        // VSOCK_IT_LOG=DEBUG shows the daemon's own log (with `dotnet test --logger "console;verbosity=detailed"`).
        var akkaLevel = Environment.GetEnvironmentVariable("VSOCK_IT_LOG") ?? "WARNING";
        builder.Services.AddAkka("test", (b, sp) => b
            .AddHocon($"akka.loglevel = {akkaLevel}", HoconAddMode.Prepend)
            .WithVsockDevices(vms));
        var host = builder.Build();
        await host.StartAsync();
        return new DaemonHost(host, directory, vms);
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _host.StopAsync(timeout.Token);
        _host.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // a socket file still being unlinked by the daemon: the temp dir is cleaned up later
        }
    }
}
