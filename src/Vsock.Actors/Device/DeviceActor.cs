using System.Net.Sockets;
using Akka.Actor;
using Akka.Event;
using Vsock.Actors.Connections;
using Vsock.Actors.Routing;
using Vsock.Actors.Settings;
using Vsock.Device.Backend;
using Vsock.Device.Connections;
using Vsock.Device.Interop;
using static Vsock.Actors.Protocol.DeviceProtocol;

namespace Vsock.Actors.Device;

/// <summary>
/// One VM's vsock device. Runs on the pinned <c>vsock.device-dispatcher</c> and is the single owner of
/// the VM's OS resources and guest state: the vhost-user listening socket and the VMM connection, the
/// guest memory mapping, the RX/TX rings and their eventfds, the host listener on <c>uds-path</c>, and
/// the <see cref="EpollWaiter"/> thread that turns kicks and socket readiness into messages.
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
    private const ulong RxKickToken = VsockBackend.RxQueueIndex;
    private const ulong TxKickToken = VsockBackend.TxQueueIndex;
    private const ulong VmmListenerToken = 10;
    private const ulong VmmConnectionToken = 11;
    private const ulong UdsListenerToken = 12;

    /// <summary>Descriptor chains per drain turn: enough to amortise a notification, small enough to stay responsive.</summary>
    internal const int DrainBudget = 128;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly VmSettings _settings;
    private readonly IActorRef _groupRouter;
    private readonly ConnectionOptions _connectionOptions;
    private readonly int[] _kickPending = new int[2];
    private EpollWaiter? _waiter;
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

    /// <summary>Starts a connection actor on this VM's connection dispatcher and watches it.</summary>
    private IActorRef StartConnection(Props props)
    {
        var actor = Context.ActorOf(props.WithDispatcher(VsockDispatchers.ConnectionsFor(Context.Props.Dispatcher)));
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

    internal sealed record WaiterFailed(Exception Cause) : INoSerializationVerificationNeeded;

    protected override void PreStart()
    {
        var self = Self;
        _waiter = new EpollWaiter($"vsock-cid{_settings.GuestCid}-events", (token, _) => OnReady(self, token),
            e => self.Tell(new WaiterFailed(e)));

        _vmmListener = UnixSocket.Listen(_settings.Socket);
        _waiter.Add(_vmmListener.Fd, EpollEvents.In | EpollEvents.OneShot, VmmListenerToken);

        if (_settings.UdsPath is { } udsPath)
        {
            _udsListener = UnixSocket.Listen(udsPath, backlog: 128);
            _udsListener.SetNonBlocking(true);
            _waiter.Add(_udsListener.Fd, EpollEvents.In | EpollEvents.OneShot, UdsListenerToken);
        }
        StartForwardListeners();

        _groupRouter.Tell(new GroupRouterProtocol.Register(_settings.GuestCid, _settings.Groups));
        _log.Info("device for guest CID {0} listening for the VMM on {1}{2}", _settings.GuestCid, _settings.Socket,
            _settings.UdsPath is null ? $" (forwarding to AF_VSOCK CID {_settings.ForwardCid})" : $"; host sockets on {_settings.UdsPath}");
    }

    /// <summary>
    /// Runs on the waiter thread: only turns readiness into a message. Kicks are coalesced with a
    /// compare-and-swap flag so a burst of guest notifications schedules one drain.
    /// </summary>
    private void OnReady(IActorRef self, ulong token)
    {
        switch (token)
        {
            case RxKickToken:
            case TxKickToken:
                if (Interlocked.Exchange(ref _kickPending[token], 1) == 0)
                    self.Tell(token == RxKickToken ? Kick.Rx : Kick.Tx);
                break;
            case VmmListenerToken:
                self.Tell(VmmAcceptable.Instance);
                break;
            case VmmConnectionToken:
                self.Tell(VmmReadable.Instance);
                break;
            case UdsListenerToken:
                self.Tell(UdsAcceptable.Instance);
                break;
            case >= FirstForwardListenerToken:
                self.Tell(new ForwardAcceptable((int)(token - FirstForwardListenerToken)));
                break;
        }
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case Kick kick:
                Volatile.Write(ref _kickPending[kick.Queue], 0);
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
                OnVmmReadable();
                break;
            case VmmAcceptable:
                OnVmmAcceptable();
                break;
            case UdsAcceptable:
                OnUdsAcceptable();
                break;
            case ForwardAcceptable forward:
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
            case GroupRouterProtocol.Registered:
                break;
            case GroupRouterProtocol.RegistrationRejected rejected:
                _log.Error("guest CID {0} cannot start: {1}", _settings.GuestCid, rejected.Reason);
                Context.Parent.Tell(VmSupervisor.GiveUp.Instance);
                Context.Stop(Self);
                break;
            case WaiterFailed failed:
                throw new InvalidOperationException("the device's event thread failed", failed.Cause);
            default:
                Unhandled(message);
                break;
        }
    }

    protected override void PostStop()
    {
        EndVmmSession("device stopping");
        _waiter?.Dispose();
        _vmmListener?.Dispose();
        _udsListener?.Dispose();
        StopForwardListeners();
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
                OnHostClient(WrapAccepted(client), "uds");
        }
        catch (LinuxException e)
        {
            // EMFILE and friends: refuse this round, keep listening.
            _log.Warning("accept on {0} failed: {1}", _settings.UdsPath, e.Message);
        }
        _waiter!.Modify(_udsListener.Fd, EpollEvents.In | EpollEvents.OneShot, UdsListenerToken);
    }

    /// <summary>Hands an accepted fd to a .NET <see cref="Socket"/>, whose async I/O the connection actor uses.</summary>
    private static Socket WrapAccepted(UnixSocket client)
    {
        var handle = client.Handle;
        var socket = new Socket(new SafeSocketHandle(handle.DangerousGetHandle(), ownsHandle: true));
        handle.SetHandleAsInvalid(); // ownership moved to the Socket
        return socket;
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
