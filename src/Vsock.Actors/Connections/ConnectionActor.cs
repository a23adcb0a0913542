using Akka.Actor;
using Akka.Event;
using Vsock.Actors.Dispatch;
using Vsock.Device.Connections;
using Vsock.Device.Diagnostics;
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
/// readiness (<see cref="ReadinessSignal"/>, passed to the stream) and two timers: the set-up deadline and the close
/// timer. The device stops the actor once the stream is over; an actor that stops first tells the device
/// (<see cref="ConnectionStopped"/>), which resets the guest's stream.
///
/// The close timer (<see cref="ConnectionSettings.CloseTimeout"/>, Linux's VSOCK_CLOSE_TIMEOUT rule): once the host
/// side of the stream is over, which is the socket hung up in both directions (EPOLLHUP: the host application closed
/// it, or shut its write side after we shut ours) and the guest was sent everything the host wrote and then its EOF
/// (SHUTDOWN), the guest has that long to close (RST, or SHUTDOWN with both flags); then the actor stops, which closes
/// the socket and leaves the guest an RST. A host application that only shut its write side still reads, so no timer
/// runs and the guest may keep sending for as long as it likes (half-close); a guest that sends after the host
/// closed gets EPIPE on the socket and an RST at once.
///
/// Kept small on purpose, as a VM may hold tens of thousands of idle connections: the state is a field and a
/// switch, not <c>Become</c> (which gives every actor a behaviour stack and a full state object), the device is
/// told of a stop by a message instead of DeathWatch (two watch tables per actor), cancellable scheduled messages
/// instead of a timer scheduler, a logger made on first use, and a compact mailbox (docs/BENCHMARKS.md, idle memory).
/// </summary>
public abstract class ConnectionActor : UntypedActor, IHostStreamOwner
{
    private readonly ReadinessSignal _readiness;
    private LoopRegistration _registration;
    private ILoggingAdapter? _log;
    private ICancelable? _deadline;
    private ICancelable? _closeCheck;
    /// <summary>Environment.TickCount64 when the host socket hung up (EPOLLHUP); 0 while it has not.</summary>
    private long _hostHungUpAt;

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

    /// <summary>Timer: is the guest past the close timeout?</summary>
    private sealed class CloseCheck : INoSerializationVerificationNeeded, IDeadLetterSuppression
    {
        public static readonly CloseCheck Instance = new();
        private CloseCheck() { }
    }

    protected sealed override void OnReceive(object message)
    {
        if (message == _readiness)
        {
            var events = _readiness.Take();
            if ((events & EpollEvents.Hup) != 0 && _hostHungUpAt == 0)
            {
                _hostHungUpAt = Environment.TickCount64;
                if (Connected)
                    ArmCloseCheck(Settings.CloseTimeout);
            }
            if (Connected)
                Stream.OnSocketReady(events);
            else
                OnSetupReadiness(events);
            return;
        }
        switch (message)
        {
            case SetupTimeout:
                OnSetupTimeout();
                break;
            case CloseCheck:
                OnCloseCheck();
                break;
            default:
                OnSetupMessage(message);
                break;
        }
    }

    /// <summary>Readiness of the socket while the subclass sets the stream up.</summary>
    protected virtual void OnSetupReadiness(uint events) => Stream.OnSocketReady(events); // recorded; nothing is read before the stream is up

    /// <summary>The set-up deadline passed. By default: the guest never answered the REQUEST.</summary>
    protected virtual void OnSetupTimeout()
    {
        if (Stream.Has(StreamStatus.Established | StreamStatus.Finished))
            return;
        // A guest that ignores REQUESTs could otherwise have a line logged per host client.
        if (Settings.Log.Allow(LogTopic.Timeout))
            Settings.Log.Warning($"{Stream.Key}: the guest did not answer REQUEST within {Settings.GuestResponseTimeout}; closing the host client");
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
        if (_hostHungUpAt != 0)
            ArmCloseCheck(Settings.CloseTimeout); // the host hung up during the set-up
    }

    private void ArmCloseCheck(TimeSpan delay)
    {
        if (Settings.CloseTimeout <= TimeSpan.Zero)
            return;
        _closeCheck?.Cancel();
        _closeCheck = Context.System.Scheduler.ScheduleTellOnceCancelable(delay, Self, CloseCheck.Instance, Self);
    }

    /// <summary>
    /// The host hung up: the guest's time runs from when it was sent the EOF (or from the hang-up, if that came later,
    /// or if the guest said it reads no more so no EOF is owed). Until then it is still being sent what the host wrote;
    /// the check comes back after another close timeout.
    /// </summary>
    private void OnCloseCheck()
    {
        if (Stream.Has(StreamStatus.Finished))
            return;
        long? since = Stream.ShutdownSentAt ?? (Stream.Has(StreamStatus.GuestReceiveShut) ? _hostHungUpAt : null);
        if (since is not { } start)
        {
            ArmCloseCheck(Settings.CloseTimeout);
            return;
        }
        var left = Math.Max(start, _hostHungUpAt) + (long)Settings.CloseTimeout.TotalMilliseconds - Environment.TickCount64;
        if (left > 0)
        {
            ArmCloseCheck(TimeSpan.FromMilliseconds(left));
            return;
        }
        if (Settings.Log.Allow(LogTopic.Timeout))
            Settings.Log.Info($"{Stream.Key}: the guest did not close within {Settings.CloseTimeout} of the host's close; resetting the stream");
        Context.Stop(Self); // closes the socket; the device resets the guest's stream (ConnectionStopped)
    }

    protected override void PostStop()
    {
        CancelDeadline();
        _closeCheck?.Cancel();
        // The stream closes the socket next, and it is the socket's only holder: closing it leaves the epoll set.
        Settings.Loop.Remove(_registration, closingFd: true);
        Stream.Dispose();
        // The device frees the stream's key and owes the guest an RST if it was still open (it ignores this when
        // it stopped us itself).
        Device.Tell(ConnectionStopped.Instance, Self);
    }
}
