using Akka.Actor;
using Akka.Event;
using Vsock.Actors.Dispatch;
using Vsock.Device.Connections;
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
/// </summary>
public abstract class ConnectionActor : UntypedActor, IWithTimers
{
    private readonly ReadinessSignal _readiness;
    private LoopRegistration _registration;

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
    protected uint? TakeReadiness(object message) => message == _readiness ? _readiness.Take() : null;

    /// <summary>The stream is set up on our side: readiness goes to the stream from now on.</summary>
    protected void BecomeConnected()
    {
        Stream.OnRegistered();
        Become(Connected);
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
                    Log.Warning("{0}: the guest did not answer REQUEST within {1}; closing the host client", Stream.Key, Settings.GuestResponseTimeout);
                    Stream.Reset();
                }
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    protected override void PostStop()
    {
        // Out of the loop before the fd closes: a number epoll still watched could be reused.
        Settings.Loop.Remove(_registration);
        Stream.Dispose();
    }
}
