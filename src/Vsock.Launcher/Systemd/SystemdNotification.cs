using System.Net.Sockets;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using Vsock.Actors.Hosting;

namespace Vsock.Launcher.Systemd;

/// <summary>
/// The systemd <c>Type=notify</c> protocol (sd_notify: datagrams to the socket named by <c>NOTIFY_SOCKET</c>,
/// sent by the package's <see cref="SystemdNotifier"/>): <c>READY=1</c> once every configured VM's sockets
/// listen (<see cref="DeviceReadiness"/>), so units ordered after this one can connect at once, and
/// <c>STOPPING=1</c> as soon as a stop begins. Nothing happens without <c>NOTIFY_SOCKET</c>.
///
/// Not <c>UseSystemd()</c>: its <see cref="SystemdLifetime"/> sends READY=1 on ApplicationStarted, which comes
/// when Akka.Hosting has created the actors, before the devices' PreStart has bound any socket; it also only
/// switches itself on when the parent process is systemd, and logs lines of its own. The console lifetime
/// already turns SIGTERM into a clean stop.
/// </summary>
internal sealed class SystemdNotification(
    ISystemdNotifier notifier,
    DeviceReadiness readiness,
    IHostApplicationLifetime lifetime,
    ILogger<SystemdNotification> log) : IHostedService, IDisposable
{
    private readonly Lock _sync = new();
    private bool _stopping;
    private CancellationTokenRegistration _stoppingRegistration;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!notifier.IsEnabled)
            return Task.CompletedTask;
        _stoppingRegistration = lifetime.ApplicationStopping.Register(() => Send(ServiceState.Stopping, stopping: true));
        _ = readiness.AllListening.ContinueWith(_ => Send(ServiceState.Ready, stopping: false),
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _stoppingRegistration.Dispose();

    private void Send(ServiceState state, bool stopping)
    {
        lock (_sync)
        {
            if (_stopping)
                return; // never READY=1 after STOPPING=1
            _stopping = stopping;
            try
            {
                notifier.Notify(state);
                log.LogDebug("told systemd {State}", state.ToString().TrimEnd());
            }
            catch (SocketException e)
            {
                log.LogWarning("cannot notify systemd ({State}): {Message}", state.ToString().TrimEnd(), e.Message);
            }
        }
    }
}
