using Akka.Actor;
using Akka.Hosting;

namespace Vsock.Actors.Hosting;

/// <summary>
/// Published on the actor system's event stream by a <see cref="Device.DeviceActor"/> once every listener of
/// its VM exists (the vhost-user socket, the <c>uds-path</c> socket, the forwarded AF_VSOCK ports): from
/// then on a VMM or a host program can connect. A device that is replaced after a failure publishes again.
/// </summary>
public sealed record DeviceListening(ulong GuestCid) : INoSerializationVerificationNeeded;

/// <summary>
/// Completes <see cref="AllListening"/> once every configured VM's device has published
/// <see cref="DeviceListening"/>; the launcher then tells systemd it is ready. Add it to the actor system
/// with <see cref="DeviceReadinessExtensions.WithDeviceReadiness"/> before <c>WithVsockDevices</c>.
/// </summary>
public sealed class DeviceReadiness
{
    private readonly HashSet<ulong> _waitingFor;
    private readonly TaskCompletionSource _all = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public DeviceReadiness(IEnumerable<ulong> guestCids)
    {
        _waitingFor = [.. guestCids];
        if (_waitingFor.Count == 0)
            _all.SetResult();
    }

    /// <summary>Completes when every configured VM listens; never fails.</summary>
    public Task AllListening => _all.Task;

    /// <summary>Called on the watcher actor only; true once nothing is left to wait for.</summary>
    internal bool Report(ulong guestCid)
    {
        _waitingFor.Remove(guestCid);
        if (_waitingFor.Count > 0)
            return false;
        _all.TrySetResult();
        return true;
    }
}

public static class DeviceReadinessExtensions
{
    /// <summary>
    /// Subscribes a watcher to <see cref="DeviceListening"/>. Subscribing is synchronous and happens here,
    /// before the devices are created (Akka.Hosting runs <c>WithActors</c> callbacks in order), so no
    /// device's announcement can be missed.
    /// </summary>
    public static AkkaConfigurationBuilder WithDeviceReadiness(this AkkaConfigurationBuilder builder, DeviceReadiness readiness)
    {
        ArgumentNullException.ThrowIfNull(readiness);
        return builder.WithActors((system, _) =>
        {
            var watcher = system.ActorOf(Props.Create(() => new DeviceReadinessActor(readiness)), "vsock-readiness");
            system.EventStream.Subscribe(watcher, typeof(DeviceListening));
        });
    }
}

/// <summary>Counts <see cref="DeviceListening"/> announcements for a <see cref="DeviceReadiness"/>, then unsubscribes and stops.</summary>
internal sealed class DeviceReadinessActor(DeviceReadiness readiness) : UntypedActor
{
    protected override void OnReceive(object message)
    {
        if (message is not DeviceListening listening)
        {
            Unhandled(message);
            return;
        }

        if (readiness.Report(listening.GuestCid))
        {
            // Unsubscribe first: a later announcement (a replaced device) must not become a dead letter.
            Context.System.EventStream.Unsubscribe(Self);
            Context.Stop(Self);
        }
    }
}
