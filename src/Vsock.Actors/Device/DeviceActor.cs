using Akka.Actor;
using Akka.Event;
using Microsoft.Win32.SafeHandles;
using Vsock.Actors.Connections;
using Vsock.Actors.Dispatch;
using Vsock.Actors.Listeners;
using Vsock.Actors.Settings;
using Vsock.Device.Backend;
using Vsock.Device.Connections;
using Vsock.Device.Diagnostics;
using Vsock.Device.Interop;
using Vsock.Device.Packets;
using Vsock.Device.Threading;
using Vsock.Device.VhostUser;
using static Vsock.Actors.Protocol.DeviceProtocol;
using static Vsock.Actors.Routing.GroupRouterProtocol;

namespace Vsock.Actors.Device;

/// <summary>
/// One VM's vsock device: the owner of the VM's device state and the switch for its messages. It runs on the VM's
/// event-loop dispatcher (<see cref="VsockDispatchers"/>) with all its children, and owns
/// <list type="bullet">
/// <item>the vhost-user listening socket and the VMM connection (<see cref="VmmLink"/>: session, guest memory, rings);</item>
/// <item>the RX/TX kick eventfd registrations;</item>
/// <item>the streams (<see cref="StreamTable"/>), the queue of streams with something for the guest
/// (<see cref="RxScheduler"/>), the routing of guest packets (<see cref="GuestPacketRouter"/>) and sibling streams
/// (<see cref="SiblingLinks"/>);</item>
/// <item>its children: a <see cref="HostListenerActor"/> per listening socket and a <see cref="ConnectionActor"/> per
/// host stream.</item>
/// </list>
/// Data moves in the device's turns: a TX turn hands each guest packet, still in guest memory, to its stream; an RX
/// turn lends the guest's RX buffers to the streams that have something (round-robin). Guest memory is lent only for
/// those synchronous calls (ref structs), never put in a message; it changes (SET_MEM_TABLE, ADD/REM_MEM_REG) only in
/// the device's own turns, between them.
///
/// When the VMM disconnects every stream of the VM is dropped and the device waits for a new VMM with fresh state.
/// The actor owns fds, so it is stopped (not restarted) on failure; its <see cref="VmSupervisor"/> starts a new one.
/// </summary>
public sealed class DeviceActor : UntypedActor, IWithTimers, IVsockDeviceEvents
{
    /// <summary>TX chains per turn: enough to amortise a notification, small enough to stay responsive.</summary>
    internal const int TxBudget = 128;

    private const string VmmStallTimer = "vmm-stall";

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly VmSettings _settings;
    private readonly IActorRef _groupRouter;
    private readonly DeviceLog _deviceLog;
    private readonly DeviceCounters _counters;
    private readonly StreamTable _table;
    private readonly RxScheduler _scheduler;
    private readonly ReadinessSignal[] _kickSignals = new ReadinessSignal[2];
    private readonly SafeFileHandle?[] _kickFds = new SafeFileHandle?[2];
    private readonly LoopRegistration[] _kickRegistrations = new LoopRegistration[2];
    private readonly ReadinessSignal _vmmListenerSignal;
    private readonly ReadinessSignal _vmmSignal;
    private readonly List<IActorRef> _listeners = [];
    private readonly RingPoller _poller;
    private EventLoop _loop = null!;
    private ConnectionSettings _connections = null!;
    private GuestPacketRouter _router = null!;
    private SiblingLinks _siblings = null!;
    private ConnectionLimit _limit = null!;
    private UnixSocket? _vmmListener;
    private LoopRegistration _vmmListenerRegistration;
    private VmmLink? _vmm;
    private bool _driverRunning;

    public DeviceActor(VmSettings settings, IActorRef groupRouter, DeviceCounters counters)
    {
        _settings = settings;
        _groupRouter = groupRouter;
        _counters = counters;
        _table = new StreamTable(counters);
        _deviceLog = new DeviceLog(new AkkaDeviceLog(_log));
        var self = Self;
        _scheduler = new RxScheduler(settings.GuestCid, _deviceLog, () => self.Tell(DrainRx.Instance), OnStreamFinished, counters);
        _kickSignals[VsockBackend.RxQueueIndex] = new ReadinessSignal(self, VsockBackend.RxQueueIndex);
        _kickSignals[VsockBackend.TxQueueIndex] = new ReadinessSignal(self, VsockBackend.TxQueueIndex);
        _vmmListenerSignal = new ReadinessSignal(self);
        _vmmSignal = new ReadinessSignal(self);
        _poller = new RingPoller(self, _scheduler);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Timer: a <see cref="VmmTimeouts"/> deadline may have passed.</summary>
    private sealed class CheckVmmStall : INoSerializationVerificationNeeded, IDeadLetterSuppression
    {
        public static readonly CheckVmmStall Instance = new();
    }

    /// <param name="counters">The VM's counters (its supervisor keeps them across device restarts); fresh ones if none.</param>
    public static Props Props(VmSettings settings, IActorRef groupRouter, string dispatcher, DeviceCounters? counters = null) =>
        Akka.Actor.Props.Create(() => new DeviceActor(settings, groupRouter, counters ?? new DeviceCounters()))
            .WithDispatcher(dispatcher)
            .WithSupervisorStrategy(ResourceSupervision.Strategy);

    private bool DriverRunning => _vmm?.Backend is { IsRunning: true };

    /// <summary>The guest's driver accepted VIRTIO_VSOCK_F_SEQPACKET (Linux 5.14+ does when the device offers it).</summary>
    private bool SeqpacketNegotiated => _vmm?.Backend is { SeqpacketNegotiated: true };

    protected override void PreStart()
    {
        _loop = EventLoop.Current ?? throw new InvalidOperationException(
            $"the device of guest CID {_settings.GuestCid} must run on a vsock event-loop dispatcher ({VsockDispatchers.ForVm(_settings.GuestCid)}), " +
            $"not on {Context.Props.Dispatcher}");
        _counters.Loop = _loop;
        _connections = new ConnectionSettings(_settings.GuestCid, _settings.TxBufferSize, _settings.UdsPath, _settings.ForwardCid, _loop)
        {
            CloseTimeout = _settings.CloseTimeout,
            Log = _deviceLog,
        };
        _limit = new ConnectionLimit(_settings.MaxConnections, _settings.GuestCid, _table, _deviceLog, _counters);
        _siblings = new SiblingLinks(Self, _groupRouter, _table, _scheduler, _deviceLog, _limit);
        _router = new GuestPacketRouter(_settings.GuestCid, _table, _scheduler, _deviceLog, () => SeqpacketNegotiated, OpenHostStream, OpenSiblingStream);
        _loop.AddIdleHook(_poller);

        _vmmListener = UnixSocket.Listen(_settings.Socket);
        _vmmListenerRegistration = _loop.Add(_vmmListener.Fd, EpollEvents.In | EpollEvents.OneShot, _vmmListenerSignal);
        if (_settings.UdsPath is { } udsPath)
        {
            var uds = UnixSocket.Listen(udsPath, backlog: 128);
            uds.SetNonBlocking(true);
            StartListener(HostListenerActor.ForUdsPath(uds, udsPath, _loop), "uds");
            StartSeqpacketListener(udsPath + SeqpacketSuffix);
        }
        if (_settings.ForwardCid is not null)
        {
            foreach (var port in _settings.ForwardListen)
            {
                StartListener(HostListenerActor.ForForwardedPort(HostListenerActor.ListenVsock(port), port, _loop), $"forward-{port}");
                _log.Info("forwarding host AF_VSOCK port {0} to guest CID {1} port {0}", port, _settings.GuestCid);
            }
            foreach (var port in _settings.ForwardListenSeqpacket)
            {
                var listener = HostListenerActor.ListenVsock(port, SocketKind.Seqpacket);
                StartListener(HostListenerActor.ForForwardedPort(listener, port, _loop, SocketKind.Seqpacket), $"forward-seqpacket-{port}");
                _log.Info("forwarding host AF_VSOCK SEQPACKET port {0} to guest CID {1} port {0}", port, _settings.GuestCid);
            }
        }
        // Every listener of this VM exists: the launcher tells systemd READY=1 once all VMs said so.
        Context.System.EventStream.Publish(new Hosting.DeviceListening(_settings.GuestCid));

        _groupRouter.Tell(new Register(_settings.GuestCid, _settings.Groups));
        _log.Info("device for guest CID {0} listening for the VMM on {1}{2}", _settings.GuestCid, _settings.Socket,
            _settings.UdsPath is null ? $" (forwarding to AF_VSOCK CID {_settings.ForwardCid})" : $"; host sockets on {_settings.UdsPath}");
    }

    /// <summary>The SEQPACKET twin of <c>uds-path</c>: <c>uds-path_seqpacket</c>.</summary>
    public const string SeqpacketSuffix = "_seqpacket";

    /// <summary>
    /// Host-initiated SEQPACKET streams: a unix SOCK_SEQPACKET listener beside <c>uds-path</c>. A path too long for
    /// a unix address (uds-path itself may be up to 107 bytes) only costs this listener, with a warning.
    /// </summary>
    private void StartSeqpacketListener(string path)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(path) >= 108)
        {
            _log.Warning("not listening for SEQPACKET clients: {0} is longer than a unix socket path may be", path);
            return;
        }
        var listener = UnixSocket.Listen(path, backlog: 128, SocketKind.Seqpacket);
        listener.SetNonBlocking(true);
        StartListener(HostListenerActor.ForUdsPath(listener, path, _loop, SocketKind.Seqpacket), "uds-seqpacket");
    }

    private void StartListener(Props props, string name)
    {
        var listener = Context.ActorOf(props.WithDispatcher(Context.Props.Dispatcher), name);
        Context.Watch(listener);
        _listeners.Add(listener);
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case ReadinessSignal signal:
                OnReadiness(signal);
                break;
            case DrainTx:
                RunTx();
                break;
            case DrainRx:
                RunRx();
                break;
            case HostClientAccepted accepted:
                OnHostClient(accepted);
                break;
            case OpenToGuest open:
                OnOpenToGuest(open);
                break;
            case ConnectionStopped:
                OnConnectionStopped(Sender);
                break;
            case Terminated terminated:
                OnListenerTerminated(terminated.ActorRef);
                break;
            case SiblingPacket sibling:
                _siblings.OnPacket(sibling, Sender, DriverRunning, SeqpacketNegotiated);
                RunRx();
                break;
            case SiblingUnreachable unreachable:
                OnSiblingUnreachable(unreachable);
                break;
            case SiblingGuestReset reset:
                _siblings.OnGuestReset(reset.Cid);
                RunRx();
                break;
            case CheckVmmStall:
                OnCheckVmmStall();
                break;
            case Registered:
                break;
            case RegistrationRejected rejected:
                _log.Error("guest CID {0} cannot start: {1}", _settings.GuestCid, rejected.Reason);
                Context.Parent.Tell(VmSupervisor.GiveUp.Instance);
                Context.Stop(Self);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void OnReadiness(ReadinessSignal signal)
    {
        var events = signal.Take();
        if (signal == _kickSignals[VsockBackend.TxQueueIndex])
        {
            _counters.TxKicks++;
            RunTx();
        }
        else if (signal == _kickSignals[VsockBackend.RxQueueIndex])
        {
            RunRx();
        }
        else if (signal == _vmmSignal)
        {
            OnVmmReady(events);
        }
        else if (signal == _vmmListenerSignal)
        {
            OnVmmAcceptable();
        }
    }

    // ------------------------------------------------------------------ the rings

    /// <summary>One TX turn: every guest packet to its stream (payloads gathered per stream), then the RX work it caused.</summary>
    private void RunTx()
    {
        _poller.TxTurnStarted();
        // Notifications stay off when the ring runs dry: the loop polls it and re-arms before it sleeps (RingPoller).
        if (_vmm?.Backend is not { IsRunning: true } backend || !backend.TryBeginTx(TxBudget, out var turn, armWhenEmpty: false))
        {
            // A ring read from memory the VMM truncated (the guard's zero page) looks broken, so no turn starts;
            // the lost memory is the reason, and it ends the session here (RingPoller asks for this turn when a
            // poll found it, with no kick to follow).
            EndVmmSessionIfGuestMemoryLost();
            return;
        }
        try
        {
            while (turn.TryNext(out var packet))
                _router.Route(ref packet, ref turn);
        }
        finally
        {
            turn.Complete();
        }
        if (EndVmmSessionIfGuestMemoryLost())
            return;
        if (turn.BudgetExhausted)
            Self.Tell(DrainTx.Instance);
        // Answers the guest's packets caused (RESPONSE, credit updates) go out in the same turn.
        RunRx();
    }

    /// <summary>One RX turn: the guest's RX buffers, lent to the streams that have something for it.</summary>
    private void RunRx()
    {
        _scheduler.BeginTurn();
        if (!_scheduler.HasWork || _vmm?.Backend is not { IsRunning: true } backend || !backend.TryBeginRx(out var turn))
            return;
        try
        {
            _scheduler.Fill(ref turn);
        }
        finally
        {
            turn.Complete();
        }
        EndVmmSessionIfGuestMemoryLost();
    }

    void IVsockDeviceEvents.RingReady(int index, SafeFileHandle? kickFd)
    {
        UnwatchKick(index);
        if (kickFd is null || index > VsockBackend.TxQueueIndex)
            return;
        _kickFds[index] = kickFd;
        // Edge-triggered: nobody reads the eventfd; every write by the VMM is a new edge.
        _kickRegistrations[index] = _loop.Add((int)kickFd.DangerousGetHandle(), EpollEvents.In | EpollEvents.EdgeTriggered, _kickSignals[index]);
    }

    void IVsockDeviceEvents.RingStopped(int index) => UnwatchKick(index);

    void IVsockDeviceEvents.DeviceReset() => DropStreams("the VMM reset the device", byGuest: true);

    private void UnwatchKick(int index)
    {
        if (index > VsockBackend.TxQueueIndex || _kickFds[index] is not { } fd)
            return;
        _kickFds[index] = null;
        var registration = _kickRegistrations[index];
        _kickRegistrations[index] = default;
        if (!fd.IsClosed)
            _loop.Remove(registration);
    }

    // ------------------------------------------------------------------ streams

    /// <summary>A host client accepted by one of our listeners: a stream with its connection actor, or closed at once.</summary>
    private void OnHostClient(HostClientAccepted accepted)
    {
        if (!DriverRunning)
        {
            // As the reference: no guest driver, no streams. The client sees EOF at once.
            _log.Debug("closing host client: the guest driver is not running");
            accepted.Socket.Dispose();
            return;
        }
        if (!_limit.Admit(ConnectionLimit.Origin.HostClient))
        {
            accepted.Socket.Dispose(); // the client sees EOF at once, as when the driver is not running
            return;
        }
        var stream = NewHostStream(accepted.Socket, sendsOkLine: accepted.Origin == HostOrigin.UdsPath, accepted.Kind);
        if (stream is null)
        {
            _log.Debug("closing SEQPACKET host client: the guest driver did not negotiate VIRTIO_VSOCK_F_SEQPACKET");
            accepted.Socket.Dispose();
            return;
        }
        var props = accepted.Origin == HostOrigin.UdsPath
            ? HostInitiatedConnection.Props(stream, _connections)
            : ForwardedConnection.Props(stream, _connections, accepted.Port);
        StartConnection(props, stream);
    }

    /// <summary>A host-initiated or forwarded connection is ready: its stream gets a key and owes the guest a REQUEST.</summary>
    private void OnOpenToGuest(OpenToGuest open)
    {
        if (_table.StreamOf(Sender) is not { } stream)
            return;
        if (!DriverRunning)
        {
            _counters.StreamsRefused++;
            Sender.Tell(new OpenRefused("the guest driver is not running"));
            return;
        }
        if (!_table.TryAllocateHostPort(open.GuestPort, out var key))
        {
            _counters.StreamsRefused++;
            Sender.Tell(new OpenRefused("no free host-side port"));
            return;
        }
        stream.OpenToGuest(key);
        _table.Add(stream);
        Sender.Tell(OpenedToGuest.Instance);
    }

    /// <summary>
    /// A guest REQUEST for a host-side stream: to CID 2, or (AF_VSOCK backend) to any CID that is not a sibling,
    /// which is forwarded to <c>forward-cid</c> as the reference does "regardless of the target CID".
    /// </summary>
    private void OpenHostStream(ConnectionKey key, in VsockHeader request)
    {
        if (!_limit.Admit(ConnectionLimit.Origin.GuestRequest, key))
        {
            _router.ReplyRst(request);
            return;
        }
        var kind = request.Type == VsockType.SeqPacket ? SocketKind.Seqpacket : SocketKind.Stream;
        var stream = NewHostStream(socket: null, sendsOkLine: false, kind)!;
        stream.AcceptFromGuest(key, request);
        _table.Add(stream);
        var endpoint = HostEndpoint.ForGuestPort(_connections, request.DstPort, kind, request.BufAlloc);
        StartConnection(GuestInitiatedConnection.Props(stream, _connections, endpoint), stream);
    }

    /// <summary>A host stream of the socket's type; null for SEQPACKET when the guest's driver did not negotiate it.</summary>
    private HostStream? NewHostStream(SafeFileHandle? socket, bool sendsOkLine, SocketKind kind)
    {
        if (kind == SocketKind.Stream)
            return new HostStream(_scheduler, _settings.TxBufferSize, socket, sendsOkLine);
        if (!SeqpacketNegotiated)
            return null;
        var family = _settings.UdsPath is not null ? HostSocketFamily.Unix : HostSocketFamily.Vsock;
        return new HostSeqpacketStream(_scheduler, _settings.TxBufferSize, socket, sendsOkLine, family);
    }

    private void OpenSiblingStream(ConnectionKey key, in VsockHeader request)
    {
        if (!_limit.Admit(ConnectionLimit.Origin.GuestRequest, key))
        {
            _router.ReplyRst(request);
            return;
        }
        _siblings.Open(key, request);
    }

    private void StartConnection(Props props, HostStream stream)
    {
        // Not watched: the connection tells us when it stops (ConnectionStopped), which costs it no watch tables.
        var actor = Context.ActorOf(props.WithDispatcher(Context.Props.Dispatcher).WithMailbox(VsockDispatchers.ConnectionMailbox));
        _table.AddOwner(actor, stream);
    }

    /// <summary>A stream is over (its RST went out, or the guest reset it): drop it and stop its owner.</summary>
    private void OnStreamFinished(VsockStream stream)
    {
        _table.Remove(stream);
        switch (stream)
        {
            case HostStream host when _table.OwnerOf(host) is { } owner:
                _table.RemoveOwner(owner);
                Context.Stop(owner);
                break;
            case SiblingStream:
                _siblings.Forget(stream.Key);
                break;
        }
    }

    private void OnListenerTerminated(IActorRef actor)
    {
        if (_listeners.Contains(actor))
            throw new InvalidOperationException($"listener {actor.Path.Name} of guest CID {_settings.GuestCid} stopped");
    }

    private void OnConnectionStopped(IActorRef actor)
    {
        if (_table.RemoveOwner(actor) is not { } stream)
            return; // we stopped it ourselves, its stream finished (or it never had one)
        // The connection stopped while its stream was still open (a set-up timeout, a failure): the guest is owed an RST.
        if (_table.Remove(stream))
        {
            _log.Debug("connection {0} ended with its stream open; resetting it", stream.Key);
            CountAbortedStream(stream);
            _router.ResetGuestStream(stream.Key, stream.Type);
            RunRx();
        }
    }

    private void OnSiblingUnreachable(SiblingUnreachable unreachable)
    {
        var h = unreachable.Header;
        if (_siblings.OnUnreachable(unreachable) is not { } stream)
            return;
        _table.Remove(stream);
        _siblings.Forget(stream.Key);
        if (h.Op == VsockOp.Request && _settings.ForwardCid is not null && DriverRunning)
        {
            // Not a sibling: the AF_VSOCK backend forwards it to the host like a stream to CID 2.
            OpenHostStream(stream.Key, h);
            RunRx(); // an RST, if the connection limit refused it
            return;
        }
        CountAbortedStream(stream);
        // One per REQUEST a guest sends to a CID it cannot reach: rate-limited.
        if (_deviceLog.Allow(LogTopic.Unreachable))
            _deviceLog.Info($"guest CID {_settings.GuestCid} cannot reach CID {h.DstCid} port {h.DstPort}: {unreachable.Reason}");
        if (h.Op != VsockOp.Rst)
            _router.ReplyRst(h);
        RunRx();
    }

    /// <summary>A stream ended by an RST the device sends in its own name: a refusal if it was never set up, else a reset.</summary>
    private void CountAbortedStream(VsockStream stream)
    {
        if (stream.Has(StreamStatus.Established))
            _counters.StreamsReset++;
        else
            _counters.StreamsRefused++;
    }

    /// <summary>The guest lost its state (driver reset, VMM gone): every stream goes, the siblings are told.</summary>
    /// <param name="byGuest">A guest can reset its driver in a loop: then the line is rate-limited.</param>
    private void DropStreams(string reason, bool byGuest = false)
    {
        if (_table.Count > 0 || _table.OwnerCount > 0)
        {
            if (!byGuest)
                _log.Info("dropping {0} stream(s): {1}", _table.Count, reason);
            else if (_deviceLog.Allow(LogTopic.StreamsDropped))
                _deviceLog.Info($"dropping {_table.Count} stream(s): {reason}");
        }
        foreach (var owner in _table.Owners.ToList())
            Context.Stop(owner);
        _table.Clear();
        _scheduler.Clear();
        _siblings.ResetAll();
    }

    // ------------------------------------------------------------------ the VMM

    private void OnVmmAcceptable()
    {
        if (_vmmListener is null)
            return;
        UnixSocket? socket;
        try
        {
            socket = _vmmListener.Accept(nonBlocking: true);
        }
        catch (LinuxException e)
        {
            _log.Warning("accept on {0} failed: {1}", _settings.Socket, e.Message);
            socket = null;
        }
        _loop.Modify(_vmmListenerRegistration, EpollEvents.In | EpollEvents.OneShot);
        if (socket is null)
            return;
        if (_vmm is not null)
        {
            _log.Warning("a second VMM connected to {0} while one is being served; closing it", _settings.Socket);
            socket.Dispose();
            return;
        }
        var fd = socket.Fd;
        var backend = new VsockBackend(_settings.GuestCid, _settings.QueueSize, this, _deviceLog, _counters);
        _counters.VmmSessions++;
        var session = new VhostUserSession(backend, MmapMemoryMapper.Instance, m => _log.Debug("vhost-user: {0}", m));
        _vmm = new VmmLink(new VmmConnection(socket, session), backend);
        _vmm.Registration = _loop.Add(fd, EpollEvents.In | EpollEvents.OneShot, _vmmSignal);
        _poller.Backend = backend;
        _log.Info("VMM connected on {0}", _settings.Socket);
    }

    /// <summary>
    /// The VMM socket is readable, writable or hung up: flush waiting replies, handle a bounded batch of complete
    /// requests (<see cref="VmmConnection.MessagesPerReadable"/>; the one-shot registration is re-armed after, so more
    /// waiting requests come back as a new message behind the rings' work). Nothing here waits for the VMM: a VMM
    /// that stalls mid-request or stops reading its replies is bounded by <see cref="VmmTimeouts"/> (one timer at the
    /// nearest deadline). A malformed request, a reply overflow or a socket error ends this VMM's session only.
    /// </summary>
    private void OnVmmReady(uint events)
    {
        if (_vmm is not { } vmm)
            return;
        var connection = vmm.Connection;
        try
        {
            if ((events & (EpollEvents.Out | EpollEvents.Err | EpollEvents.Hup)) != 0 && connection.WantsWritable)
                connection.OnWritable();
            if (connection.OnReadable() == VmmReadResult.Closed)
            {
                EndVmmSession("the VMM closed the connection");
                return;
            }
        }
        catch (VhostUserProtocolException e)
        {
            _log.Error("vhost-user protocol error from the VMM on {0}: {1}; disconnecting it", _settings.Socket, e.Message);
            EndVmmSession("protocol error");
            return;
        }
        catch (IOException e)
        {
            _log.Warning("VMM connection on {0} failed: {1}", _settings.Socket, e.Message);
            EndVmmSession("I/O error");
            return;
        }
        _loop.Modify(vmm.Registration, EpollEvents.In | (connection.WantsWritable ? EpollEvents.Out : 0) | EpollEvents.OneShot);
        ArmVmmStallTimer();
        if (EndVmmSessionIfGuestMemoryLost())
            return;
        var running = DriverRunning;
        if (running)
        {
            // A request may have started the rings while the guest already queued work.
            RunTx();
            RunRx();
        }
        else if (_driverRunning)
        {
            // The driver stopped (guest reset, reboot or shutdown: rings disabled and stopped). The guest forgets
            // its sockets, so ours go too; the VMM itself stays connected.
            DropStreams("the guest driver stopped", byGuest: true);
        }
        _driverRunning = running;
    }

    /// <summary>One timer, at the nearest <see cref="VmmTimeouts"/> deadline, only while the VMM is stalled.</summary>
    private void ArmVmmStallTimer()
    {
        if (_vmm?.Connection.NextStallCheck is { } due)
            Timers.StartSingleTimer(VmmStallTimer, CheckVmmStall.Instance, due);
        else if (Timers.IsTimerActive(VmmStallTimer))
            Timers.Cancel(VmmStallTimer);
    }

    private void OnCheckVmmStall()
    {
        if (_vmm is not { } vmm)
            return;
        var stall = vmm.Connection.CheckStall();
        if (stall == VmmStall.None)
        {
            ArmVmmStallTimer(); // the stall ended, or moved on to a later deadline
            return;
        }
        _log.Warning("{0} on {1}; disconnecting it", vmm.Connection.Describe(stall), _settings.Socket);
        EndVmmSession(stall == VmmStall.PartialMessage ? "stalled mid-request" : "replies unread");
    }

    /// <summary>
    /// After a ring turn or a request: if the VMM truncated a guest memory file under our mapping (the SIGBUS guard
    /// repaired the fault and marked the region), its guest's memory means nothing any more.
    /// </summary>
    private bool EndVmmSessionIfGuestMemoryLost()
    {
        if (_vmm?.PoisonedRegion is not { } region)
            return false;
        _log.Error("the VMM on {0} truncated guest memory under the device: an access past the end of the file behind region [{1}] was caught; disconnecting it",
            _settings.Socket, region);
        EndVmmSession("the VMM truncated guest memory");
        return true;
    }

    /// <summary>Drops the VMM and everything that belonged to its guest; the listener stays for the next VMM.</summary>
    private void EndVmmSession(string reason)
    {
        if (_vmm is not { } vmm)
            return;
        _log.Info("VMM on {0} gone ({1}); dropping the guest's streams and waiting for a new VMM", _settings.Socket, reason);
        _counters.VmmDisconnects++;
        _loop.Remove(vmm.Registration);
        if (Timers.IsTimerActive(VmmStallTimer))
            Timers.Cancel(VmmStallTimer);
        _vmm = null;
        _poller.Backend = null;
        // Before the backend goes: its reset on Dispose would otherwise drop them as a guest-caused device reset.
        DropStreams(reason);
        vmm.Dispose();
        _driverRunning = false;
    }

    protected override void PostStop()
    {
        EndVmmSession("device stopping");
        if (_loop is not null)
        {
            _loop.RemoveIdleHook(_poller);
            _loop.Remove(_vmmListenerRegistration);
        }
        _vmmListener?.Dispose();
        // We created this socket file; nobody else should find it once we are gone.
        try
        {
            File.Delete(_settings.Socket);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.Warning("could not remove {0}: {1}", _settings.Socket, e.Message);
        }
        _log.Info("device for guest CID {0} stopped", _settings.GuestCid);
    }
}
