using Akka.Actor;
using Akka.Event;
using Vsock.Actors.Dispatch;
using Vsock.Device.Connections;
using Vsock.Device.Interop;
using Vsock.Device.Threading;
using static Vsock.Actors.Protocol.DeviceProtocol;

namespace Vsock.Actors.Connections;

/// <summary>
/// The owner of one host stream (Akka.IO's <c>TcpConnection</c>): this base holds the established stream and its
/// I/O; one subclass per origin sets it up (<see cref="HostInitiatedConnection"/>: a <c>CONNECT</c> line on
/// <c>uds-path</c>; <see cref="GuestInitiatedConnection"/>: a guest REQUEST to <c>uds-path_PORT</c> or host AF_VSOCK;
/// <see cref="ForwardedConnection"/>: a client of a <c>forward-listen</c> port).
///
/// The actor owns its <see cref="HostStream"/> (and through it the host socket and TX buffer) and releases it in
/// <see cref="PostStop"/> whatever the state; it is stopped, never restarted. The stream's data moves in the device's
/// turns (the device lends it guest memory); the actor's part is the socket's registration with the VM's loop, its
/// readiness (<see cref="ReadinessSignal"/>, passed to the stream) and the set-up deadline. The device stops the
/// actor once the stream is over; an actor that stops first tells the device (<see cref="ConnectionStopped"/>),
/// which resets the guest's stream.
///
/// Kept small on purpose, as a VM may hold tens of thousands of idle connections: the state is a field and a
/// switch, not <c>Become</c> (which gives every actor a behaviour stack and a full state object), the device is
/// told of a stop by a message instead of DeathWatch (two watch tables per actor), one cancellable timer instead
/// of a timer scheduler, a logger made on first use, and a compact mailbox (docs/BENCHMARKS.md, idle memory).
/// </summary>
public abstract class ConnectionActor : UntypedActor, IHostStreamOwner
{
    private readonly ReadinessSignal _readiness;
    private LoopRegistration _registration;
    private ILoggingAdapter? _log;
    private ICancelable? _deadline;

    protected ConnectionActor(HostStream stream, ConnectionSettings settings)
    {
        Stream = stream;
        Settings = settings;
        _readiness = new ReadinessSignal(Self);
        stream.Owner = this;
    }

    /// <summary>Made on first use: most connections never log.</summary>
    protected ILoggingAdapter Log => _log ??= Context.GetLogger();

    protected HostStream Stream { get; }

    protected ConnectionSettings Settings { get; }

    /// <summary>The device that runs the stream (this actor's parent).</summary>
    protected IActorRef Device => Context.Parent;

    /// <summary>True once set-up is over on our side: readiness goes straight to the stream.</summary>
    protected bool Connected { get; private set; }

    /// <summary>The set-up deadline passed (CONNECT line, guest RESPONSE).</summary>
    protected sealed class SetupTimeout : INoSerializationVerificationNeeded, IDeadLetterSuppression
    {
        public static readonly SetupTimeout Instance = new();
        private SetupTimeout() { }
    }

    protected sealed override void OnReceive(object message)
    {
        if (message == _readiness)
        {
            var events = _readiness.Take();
            if (Connected)
                Stream.OnSocketReady(events);
            else
                OnSetupReadiness(events);
            return;
        }
        if (message is SetupTimeout)
        {
            OnSetupTimeout();
            return;
        }
        OnSetupMessage(message);
    }

    /// <summary>Readiness of the socket while the subclass sets the stream up.</summary>
    protected virtual void OnSetupReadiness(uint events) => Stream.OnSocketReady(events); // recorded; nothing is read before the stream is up

    /// <summary>The set-up deadline passed. By default: the guest never answered the REQUEST.</summary>
    protected virtual void OnSetupTimeout()
    {
        if (Stream.Has(StreamStatus.Established | StreamStatus.Finished))
            return;
        Log.Warning("{0}: the guest did not answer REQUEST within {1}; closing the host client", Stream.Key, Settings.GuestResponseTimeout);
        Stream.Reset();
    }

    /// <summary>Any other message (set-up replies).</summary>
    protected virtual void OnSetupMessage(object message) => Unhandled(message);

    /// <summary>Arms the one set-up deadline (replacing an earlier one).</summary>
    protected void StartDeadline(TimeSpan after)
    {
        _deadline?.Cancel();
        _deadline = Context.System.Scheduler.ScheduleTellOnceCancelable(after, Self, SetupTimeout.Instance, Self);
    }

    protected void CancelDeadline()
    {
        _deadline?.Cancel();
        _deadline = null;
    }

    /// <summary>The stream is established (called by the stream, on the VM's loop thread, in the device's turn).</summary>
    void IHostStreamOwner.OnEstablished() => CancelDeadline(); // thread-safe: only cancels a scheduled message

    /// <summary>
    /// Registers the host socket with the VM's loop for both directions, edge-triggered, for the rest of its life.
    /// Both directions start out "maybe ready": the first call finds out (EAGAIN at worst).
    /// </summary>
    protected void WatchSocket()
    {
        var socket = Stream.Socket ?? throw new InvalidOperationException("the stream has no socket yet");
        _registration = Settings.Loop.Add((int)socket.DangerousGetHandle(),
            EpollEvents.In | EpollEvents.Out | EpollEvents.RdHup | EpollEvents.EdgeTriggered, _readiness);
    }

    /// <summary>The stream is set up on our side: readiness goes to the stream from now on.</summary>
    protected void BecomeConnected()
    {
        Connected = true;
        Stream.OnRegistered();
    }

    protected override void PostStop()
    {
        CancelDeadline();
        // The stream closes the socket next, and it is the socket's only holder: closing it leaves the epoll set.
        Settings.Loop.Remove(_registration, closingFd: true);
        Stream.Dispose();
        // The device frees the stream's key and owes the guest an RST if it was still open (it ignores this when
        // it stopped us itself).
        Device.Tell(ConnectionStopped.Instance, Self);
    }
}
