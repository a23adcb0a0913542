using Akka.Actor;
using Akka.Event;
using Microsoft.Win32.SafeHandles;
using Vsock.Actors.Device;
using Vsock.Actors.Dispatch;
using Vsock.Device.Diagnostics;
using Vsock.Device.Interop;
using Vsock.Device.Threading;
using static Vsock.Actors.Protocol.DeviceProtocol;
using VsockApi = Vsock.Device.Interop.Vsock;

namespace Vsock.Actors.Listeners;

/// <summary>
/// Owns one listening socket of a VM (Akka.IO's TcpListener): the unix <c>uds-path</c> (and its SEQPACKET twin
/// <c>uds-path_seqpacket</c>) or a <c>forward-listen</c> host AF_VSOCK port (SOCK_STREAM or SOCK_SEQPACKET). Accepts every pending client when the VM's loop reports the socket readable and hands each to
/// its parent, the device (<see cref="HostClientAccepted"/>), which owns it from then on. Stopped, never restarted;
/// <see cref="PostStop"/> closes the socket (and removes the unix socket file it was bound to).
/// </summary>
public sealed class HostListenerActor : UntypedActor, IWithTimers
{
    /// <summary>
    /// After a failed accept (EMFILE: the process is out of fds) the client stays in the backlog and the socket stays
    /// readable, so listening again at once would spin the VM's loop; we listen again this much later.
    /// </summary>
    public static readonly TimeSpan AcceptRetryDelay = TimeSpan.FromMilliseconds(100);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    /// <summary>Accept failures repeat every <see cref="AcceptRetryDelay"/> while they last: rate-limited.</summary>
    private readonly DeviceLog _failures;
    private readonly SafeFileHandle _listener;
    private readonly UnixSocket? _unixListener;
    private readonly HostOrigin _origin;
    private readonly uint _port;
    private readonly SocketKind _kind;
    private readonly string? _path;
    private readonly EventLoop _loop;
    private readonly ReadinessSignal _readiness;
    private LoopRegistration _registration;

    public HostListenerActor(SafeFileHandle listener, HostOrigin origin, uint port, string? path, EventLoop loop, SocketKind kind = SocketKind.Stream)
    {
        _listener = listener;
        _unixListener = origin == HostOrigin.UdsPath ? UnixSocket.FromHandle(listener) : null;
        _origin = origin;
        _port = port;
        _kind = kind;
        _path = path;
        _loop = loop;
        _readiness = new ReadinessSignal(Self);
        _failures = new DeviceLog(new AkkaDeviceLog(_log));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    private sealed class Rearm : INoSerializationVerificationNeeded, IDeadLetterSuppression
    {
        public static readonly Rearm Instance = new();
        private Rearm() { }
    }

    /// <summary>A listener already bound to <paramref name="path"/> (the device binds it, so a bad path fails the device's start).</summary>
    public static Props ForUdsPath(UnixSocket listener, string path, EventLoop loop, SocketKind kind = SocketKind.Stream) =>
        Props.Create(() => new HostListenerActor(listener.Handle, HostOrigin.UdsPath, 0, path, loop, kind));

    /// <summary>A host AF_VSOCK listener on <paramref name="port"/>; its clients reach the same port of the guest.</summary>
    public static Props ForForwardedPort(SafeFileHandle listener, uint port, EventLoop loop, SocketKind kind = SocketKind.Stream) =>
        Props.Create(() => new HostListenerActor(listener, HostOrigin.ForwardListen, port, null, loop, kind));

    /// <summary>Binds the <c>forward-listen</c> port (any local CID, as the reference does).</summary>
    public static SafeFileHandle ListenVsock(uint port, SocketKind kind = SocketKind.Stream) => VsockApi.Listen(VsockApi.CidAny, port, kind: kind);

    protected override void PreStart() =>
        _registration = _loop.Add((int)_listener.DangerousGetHandle(), EpollEvents.In | EpollEvents.OneShot, _readiness);

    protected override void OnReceive(object message)
    {
        if (message == Rearm.Instance)
        {
            _loop.Modify(_registration, EpollEvents.In | EpollEvents.OneShot);
            return;
        }
        if (message != _readiness)
        {
            Unhandled(message);
            return;
        }
        _readiness.Take();
        try
        {
            while (Accept() is { } client)
                Context.Parent.Tell(new HostClientAccepted(client, _origin, _port, _kind));
        }
        catch (LinuxException e)
        {
            // EMFILE and friends: refuse this round, keep listening a little later.
            if (_failures.Allow(LogTopic.HostSocket))
                _failures.Warning($"accept on {Describe()} failed: {e.Message}; trying again in {AcceptRetryDelay.TotalMilliseconds:0} ms");
            Timers.StartSingleTimer(Rearm.Instance, Rearm.Instance, AcceptRetryDelay);
            return;
        }
        _loop.Modify(_registration, EpollEvents.In | EpollEvents.OneShot);
    }

    private SafeFileHandle? Accept()
    {
        if (_unixListener is not null)
            return _unixListener.Accept(nonBlocking: true)?.Handle;
        var accepted = VsockApi.Accept(_listener, out var peerCid, out var peerPort);
        if (accepted is not null)
            _log.Debug("host AF_VSOCK {0}:{1} connected to forwarded port {2}", peerCid, peerPort, _port);
        return accepted;
    }

    private string Describe() => _path ?? $"AF_VSOCK port {_port}";

    protected override void PostStop()
    {
        _loop.Remove(_registration);
        _listener.Dispose();
        if (_path is null)
            return;
        try
        {
            File.Delete(_path); // we bound it; nobody else should find it once we are gone
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.Warning("could not remove {0}: {1}", _path, e.Message);
        }
    }
}
