using Akka.Actor;
using Akka.Event;
using Vsock.Actors.Settings;
using Vsock.Device.Diagnostics;

namespace Vsock.Actors.Device;

/// <summary>
/// Keeps one VM's <see cref="DeviceActor"/> alive. The device owns fds, so a failure stops it
/// (<see cref="ResourceSupervision"/>); this parent, which owns nothing, watches it and starts a fresh
/// one after <see cref="RestartDelay"/>. Other VMs never notice: each has its own supervisor.
/// </summary>
public sealed class VmSupervisor : UntypedActor, IWithTimers
{
    public static readonly TimeSpan RestartDelay = TimeSpan.FromMilliseconds(500);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly VmSettings _settings;
    private readonly IActorRef _groupRouter;
    /// <summary>The VM's counters outlive its devices, so a restart does not reset them (VsockMeter reads them).</summary>
    private readonly DeviceCounters _counters = new();
    private IActorRef? _device;
    private bool _gaveUp;
    private int _restarts;

    public VmSupervisor(VmSettings settings, IActorRef groupRouter)
    {
        _settings = settings;
        _groupRouter = groupRouter;
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(VmSettings settings, IActorRef groupRouter) =>
        Akka.Actor.Props.Create(() => new VmSupervisor(settings, groupRouter));

    /// <summary>The device cannot work with its configuration (e.g. its CID is taken): do not restart it.</summary>
    public sealed class GiveUp
    {
        public static readonly GiveUp Instance = new();
    }

    /// <summary>Asks for the current device actor (tests and tools): answers <see cref="CurrentDevice"/>.</summary>
    public sealed class GetDevice
    {
        public static readonly GetDevice Instance = new();
    }

    public sealed record CurrentDevice(IActorRef? Device, int Restarts);

    private sealed class StartDevice
    {
        public static readonly StartDevice Instance = new();
    }

    protected override SupervisorStrategy SupervisorStrategy() => ResourceSupervision.Strategy;

    protected override void PreStart()
    {
        VsockMeter.Register(_settings.GuestCid, _counters);
        Start();
    }

    protected override void PostStop() => VsockMeter.Unregister(_settings.GuestCid, _counters);

    private void Start()
    {
        var dispatcher = VsockDispatchers.ForVm(Context.System, _settings.GuestCid);
        _counters.DeviceStarts++;
        _device = Context.ActorOf(DeviceActor.Props(_settings, _groupRouter, dispatcher, _counters), "device");
        Context.Watch(_device);
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case Terminated t when t.ActorRef.Equals(_device):
                _device = null;
                if (_gaveUp)
                {
                    _log.Error("device for guest CID {0} is stopped for good", _settings.GuestCid);
                    return;
                }
                _restarts++;
                _log.Warning("device for guest CID {0} stopped unexpectedly; starting a fresh one in {1} (restart {2})",
                    _settings.GuestCid, RestartDelay, _restarts);
                Timers.StartSingleTimer("restart", StartDevice.Instance, RestartDelay);
                break;
            case StartDevice:
                if (_device is null)
                    Start();
                break;
            case GiveUp:
                _gaveUp = true;
                break;
            case GetDevice:
                Sender.Tell(new CurrentDevice(_device, _restarts));
                break;
            default:
                Unhandled(message);
                break;
        }
    }
}
