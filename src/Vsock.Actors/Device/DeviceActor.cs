using System.Net.Sockets;
using Akka.Actor;
using Akka.Event;
using Vsock.Actors.Connections;
using Vsock.Actors.Routing;
using Vsock.Actors.Settings;
using Vsock.Device.Backend;
using Vsock.Device.Connections;
using Vsock.Device.Interop;
using Vsock.Device.Threading;
using Vsock.Actors.Dispatch;
using static Vsock.Actors.Protocol.DeviceProtocol;

namespace Vsock.Actors.Device;

/// <summary>
/// One VM's vsock device. Runs on the VM's event-loop dispatcher (<see cref="VsockDispatchers"/>) and is
/// the single owner of the VM's OS resources and guest state: the vhost-user listening socket and the VMM
/// connection, the guest memory mapping, the RX/TX rings and their eventfds, and the host listener on
/// <c>uds-path</c>. Their readiness comes from the <see cref="EventLoop"/> the actor runs on, as messages.
///
/// Guest memory is only touched on this actor's thread: TX payloads are copied into pooled arrays
/// before they leave (to a <see cref="ConnectionActor"/>), RX payloads are copied in from pooled arrays.
/// The rings are drained in bounded batches; a full batch re-sends the drain message to itself so
/// vhost-user requests and new packets interleave with a busy guest.
///
/// When the VMM disconnects every connection of the VM is dropped and the device waits for a new VMM
/// with fresh state (QEMU can be restarted against a running daemon). The actor owns fds, so it is
/// stopped (not restarted) on failure; its <see cref="VmSupervisor"/> starts a new one.
/// </summary>
public sealed partial class DeviceActor : UntypedActor, IWithTimers
{
    /// <summary>Descriptor chains per drain turn: enough to amortise a notification, small enough to stay responsive.</summary>
    internal const int DrainBudget = 128;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly VmSettings _settings;
    private readonly IActorRef _groupRouter;
    private ConnectionOptions _connectionOptions;
    private EventLoop _loop = null!;
    /// <summary>A loop of our own, when the actor does not run on one (a dispatcher configured by hand).</summary>
    private EventLoop? _ownLoop;
    private readonly ReadinessSignal[] _kickSignals = new ReadinessSignal[2];
    private ReadinessSignal _vmmListenerSignal = null!;
    private ReadinessSignal _vmmSignal = null!;
    private ReadinessSignal _udsListenerSignal = null!;
    private LoopRegistration _vmmListenerRegistration;
    private LoopRegistration _udsListenerRegistration;
    private UnixSocket? _vmmListener;
    private UnixSocket? _udsListener;

    public DeviceActor(VmSettings settings, IActorRef groupRouter)
    {
        _settings = settings;
        _groupRouter = groupRouter;
        _connectionOptions = new ConnectionOptions(settings.GuestCid, settings.TxBufferSize, settings.UdsPath, settings.ForwardCid);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(VmSettings settings, IActorRef groupRouter, string dispatcher = VsockDispatchers.Device) =>
        Akka.Actor.Props.Create(() => new DeviceActor(settings, groupRouter))
            .WithDispatcher(dispatcher)
            .WithSupervisorStrategy(ConnectionSupervision.Strategy);

    /// <summary>Starts a connection actor on this device's dispatcher (so on its event loop) and watches it.</summary>
    private IActorRef StartConnection(Props props)
    {
        var actor = Context.ActorOf(props.WithDispatcher(Context.Props.Dispatcher));
        Context.Watch(actor);
        return actor;
    }

    // Internal signals: preallocated, payload-free.
    internal sealed class Kick : INoSerializationVerificationNeeded, IDeadLetterSuppression
    {
        public static readonly Kick Rx = new(VsockBackend.RxQueueIndex);
        public static readonly Kick Tx = new(VsockBackend.TxQueueIndex);
        private Kick(int queue) => Queue = queue;
        public int Queue { get; }
    }

    internal sealed class DrainRx : INoSerializationVerificationNeeded, IDeadLetterSuppression
    {
        public static readonly DrainRx Instance = new();
    }

    internal sealed class DrainTx : INoSerializationVerificationNeeded, IDeadLetterSuppression
    {
        public static readonly DrainTx Instance = new();
    }

    internal sealed class VmmAcceptable : INoSerializationVerificationNeeded, IDeadLetterSuppression
    {
        public static readonly VmmAcceptable Instance = new();
    }

    internal sealed class VmmReadable : INoSerializationVerificationNeeded, IDeadLetterSuppression
    {
        public static readonly VmmReadable Instance = new();
    }

    internal sealed class UdsAcceptable : INoSerializationVerificationNeeded, IDeadLetterSuppression
    {
        public static readonly UdsAcceptable Instance = new();
    }

    /// <summary>The device's own event loop (when it has one) failed outside any turn: fail the device, so its supervisor replaces it.</summary>
    internal sealed record LoopFailed(Exception Cause) : INoSerializationVerificationNeeded;

    protected override void PreStart()
    {
        if (EventLoop.Current is { } current)
        {
            _loop = current;
        }
        else
        {
            var self = Self;
            _loop = _ownLoop = new EventLoop($"vsock-cid{_settings.GuestCid}-events");
            _ownLoop.Failed += e => self.Tell(new LoopFailed(e));
        }
        _connectionOptions = _connectionOptions with { Loop = _loop };
        _kickSignals[VsockBackend.RxQueueIndex] = new ReadinessSignal(Self, Kick.Rx);
        _kickSignals[VsockBackend.TxQueueIndex] = new ReadinessSignal(Self, Kick.Tx);
        _vmmListenerSignal = new ReadinessSignal(Self, VmmAcceptable.Instance);
        _vmmSignal = new ReadinessSignal(Self, VmmReadable.Instance);
        _udsListenerSignal = new ReadinessSignal(Self, UdsAcceptable.Instance);

        _vmmListener = UnixSocket.Listen(_settings.Socket);
        _vmmListenerRegistration = _loop.Add(_vmmListener.Fd, EpollEvents.In | EpollEvents.OneShot, _vmmListenerSignal);

        if (_settings.UdsPath is { } udsPath)
        {
            _udsListener = UnixSocket.Listen(udsPath, backlog: 128);
            _udsListener.SetNonBlocking(true);
            _udsListenerRegistration = _loop.Add(_udsListener.Fd, EpollEvents.In | EpollEvents.OneShot, _udsListenerSignal);
        }
        StartForwardListeners();
        Context.System.EventStream.Publish(new Hosting.DeviceListening(_settings.GuestCid)); // every listener of this VM exists (systemd READY=1)

        _groupRouter.Tell(new GroupRouterProtocol.Register(_settings.GuestCid, _settings.Groups));
        _log.Info("device for guest CID {0} listening for the VMM on {1}{2}", _settings.GuestCid, _settings.Socket,
            _settings.UdsPath is null ? $" (forwarding to AF_VSOCK CID {_settings.ForwardCid})" : $"; host sockets on {_settings.UdsPath}");
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case Kick kick:
                _kickSignals[kick.Queue].Handled();
                if (kick.Queue == VsockBackend.TxQueueIndex)
                    RunTx();
                else
                    RunRx();
                break;
            case DrainTx:
                RunTx();
                break;
            case DrainRx:
                _rxScheduled = false;
                RunRx();
                break;
            case ToGuest toGuest:
                OnToGuest(toGuest);
                break;
            case OpenToGuest open:
                OnOpenToGuest(open);
                break;
            case VmmReadable:
                _vmmSignal.Handled();
                OnVmmReadable();
                break;
            case VmmAcceptable:
                _vmmListenerSignal.Handled();
                OnVmmAcceptable();
                break;
            case UdsAcceptable:
                _udsListenerSignal.Handled();
                OnUdsAcceptable();
                break;
            case ForwardAcceptable forward:
                _forwardListeners[forward.Index].Signal.Handled();
                OnForwardAcceptable(forward.Index);
                break;
            case HostClientAccepted accepted:
                OnHostClient(accepted.Socket, accepted.Origin);
                break;
            case Terminated terminated:
                OnConnectionTerminated(terminated.ActorRef);
                break;
            case GroupRouterProtocol.SiblingPacket sibling:
                OnSiblingPacket(sibling);
                break;
            case GroupRouterProtocol.SiblingUnreachable unreachable:
                OnSiblingUnreachable(unreachable);
                break;
            case GroupRouterProtocol.SiblingGuestReset reset:
                OnSiblingGuestReset(reset.Cid);
                break;
            case LoopFailed failed:
                throw new InvalidOperationException("the device's event loop failed", failed.Cause);
            case GroupRouterProtocol.Registered:
                break;
            case GroupRouterProtocol.RegistrationRejected rejected:
                _log.Error("guest CID {0} cannot start: {1}", _settings.GuestCid, rejected.Reason);
                Context.Parent.Tell(VmSupervisor.GiveUp.Instance);
                Context.Stop(Self);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    protected override void PostStop()
    {
        EndVmmSession("device stopping");
        if (_loop is not null)
        {
            _loop.Remove(_vmmListenerRegistration);
            _loop.Remove(_udsListenerRegistration);
        }
        _vmmListener?.Dispose();
        _udsListener?.Dispose();
        StopForwardListeners();
        _ownLoop?.Dispose();
        // We created these socket files; nobody else should find them once we are gone.
        TryUnlink(_settings.Socket);
        if (_settings.UdsPath is not null)
            TryUnlink(_settings.UdsPath);
        _log.Info("device for guest CID {0} stopped", _settings.GuestCid);
    }

    private void TryUnlink(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException e)
        {
            _log.Warning("could not remove {0}: {1}", path, e.Message);
        }
        catch (UnauthorizedAccessException e)
        {
            _log.Warning("could not remove {0}: {1}", path, e.Message);
        }
    }

    private void OnUdsAcceptable()
    {
        if (_udsListener is null)
            return;
        try
        {
            while (_udsListener.Accept(nonBlocking: true) is { } client)
                OnHostClient(client.ToSocket(), "uds");
        }
        catch (LinuxException e)
        {
            // EMFILE and friends: refuse this round, keep listening.
            _log.Warning("accept on {0} failed: {1}", _settings.UdsPath, e.Message);
        }
        _loop.Modify(_udsListenerRegistration, EpollEvents.In | EpollEvents.OneShot);
    }

    private void OnHostClient(Socket client, string origin)
    {
        if (_backend is not { IsRunning: true })
        {
            // As the reference: no guest driver, no streams. The client sees EOF at once.
            _log.Debug("closing {0} host client: the guest driver is not running", origin);
            client.Dispose();
            return;
        }
        StartConnection(ConnectionActor.ForHostClient(Self, _connectionOptions, client));
    }
}
