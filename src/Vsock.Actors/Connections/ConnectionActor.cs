using Akka.Actor;
using Akka.Event;
using Vsock.Actors.Dispatch;
using Vsock.Device.Connections;
using Vsock.Device.Diagnostics;
using Vsock.Device.Interop;
using Vsock.Device.Threading;

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
/// readiness (<see cref="ReadinessSignal"/>, passed to the stream) and the set-up and close timers. The device stops
/// the actor once the stream is over; if the actor stops first, the device resets the guest's stream.
///
/// The close timer (<see cref="ConnectionSettings.CloseTimeout"/>, Linux's VSOCK_CLOSE_TIMEOUT rule): once the host
/// side of the stream is over, which is the socket hung up in both directions (EPOLLHUP: the host application closed
/// it, or shut its write side after we shut ours) and the guest was sent everything the host wrote and then its EOF
/// (SHUTDOWN), the guest has that long to close (RST, or SHUTDOWN with both flags); then the actor stops, which closes
/// the socket and leaves the guest an RST. A host application that only shut its write side still reads, so no timer
/// runs and the guest may keep sending for as long as it likes (half-close); a guest that sends after the host
/// closed gets EPIPE on the socket and an RST at once, as before.
/// </summary>
public abstract class ConnectionActor : UntypedActor, IWithTimers
{
    private readonly ReadinessSignal _readiness;
    private LoopRegistration _registration;
    /// <summary>Environment.TickCount64 when the host socket hung up (EPOLLHUP); 0 while it has not.</summary>
    private long _hostHungUpAt;
    private bool _connected;

    protected ConnectionActor(HostStream stream, ConnectionSettings settings)
    {
        Stream = stream;
        Settings = settings;
        _readiness = new ReadinessSignal(Self);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected ILoggingAdapter Log { get; } = Context.GetLogger();

    protected HostStream Stream { get; }

    protected ConnectionSettings Settings { get; }

    /// <summary>The device that runs the stream (this actor's parent).</summary>
    protected IActorRef Device => Context.Parent;

    /// <summary>A set-up deadline passed (CONNECT line, guest RESPONSE).</summary>
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

    protected override void OnReceive(object message) => Unhandled(message);

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

    /// <summary>The socket's readiness since the last call, or null if <paramref name="message"/> is not our signal.</summary>
    protected uint? TakeReadiness(object message)
    {
        if (message != _readiness)
            return null;
        var events = _readiness.Take();
        if ((events & EpollEvents.Hup) != 0 && _hostHungUpAt == 0)
        {
            _hostHungUpAt = Environment.TickCount64;
            if (_connected)
                ArmCloseCheck(Settings.CloseTimeout);
        }
        return events;
    }

    /// <summary>The stream is set up on our side: readiness goes to the stream from now on.</summary>
    protected void BecomeConnected()
    {
        Stream.OnRegistered();
        _connected = true;
        Become(Connected);
        if (_hostHungUpAt != 0)
            ArmCloseCheck(Settings.CloseTimeout); // the host hung up during the set-up
    }

    private void Connected(object message)
    {
        if (TakeReadiness(message) is { } events)
        {
            Stream.OnSocketReady(events);
            return;
        }
        switch (message)
        {
            case SetupTimeout:
                if (!Stream.Has(StreamStatus.Established | StreamStatus.Finished))
                {
                    // A guest that ignores REQUESTs could otherwise have a line logged per host client.
                    if (Settings.Log.Allow(LogTopic.Timeout))
                        Settings.Log.Warning($"{Stream.Key}: the guest did not answer REQUEST within {Settings.GuestResponseTimeout}; closing the host client");
                    Stream.Reset();
                }
                break;
            case CloseCheck:
                OnCloseCheck();
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void ArmCloseCheck(TimeSpan delay)
    {
        if (Settings.CloseTimeout > TimeSpan.Zero)
            Timers.StartSingleTimer(CloseCheck.Instance, CloseCheck.Instance, delay);
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
        Context.Stop(Self); // closes the socket; the device resets the guest's stream (OnTerminated)
    }

    protected override void PostStop()
    {
        // Out of the loop before the fd closes: a number epoll still watched could be reused.
        Settings.Loop.Remove(_registration);
        Stream.Dispose();
    }
}
