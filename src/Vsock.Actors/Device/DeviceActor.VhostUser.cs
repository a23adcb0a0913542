using Akka.Event;
using Akka.Actor;
using Vsock.Device.Backend;
using Vsock.Device.Interop;
using Vsock.Device.Threading;
using Vsock.Device.VhostUser;

namespace Vsock.Actors.Device;

/// <summary>
/// The vhost-user side of the device: one VMM at a time on the <c>socket</c> path. The connection is a
/// <see cref="VmmConnection"/> on a non-blocking socket; nothing here waits for the VMM, so a VMM that
/// stalls mid-request or stops reading its replies never freezes the VM's rings or its stop. Its stalls
/// are bounded by <see cref="VmmTimeouts"/> (a single timer at the nearest deadline).
/// </summary>
public sealed partial class DeviceActor
{
    private const string VmmStallTimer = "vmm-stall";

    private VmmConnection? _vmm;
    private LoopRegistration _vmmRegistration;
    private VsockBackend? _backend;
    private bool _driverRunning;

    /// <summary>Timer: a <see cref="VmmTimeouts"/> deadline may have passed.</summary>
    internal sealed class CheckVmmStall : INoSerializationVerificationNeeded, IDeadLetterSuppression
    {
        public static readonly CheckVmmStall Instance = new();
    }

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
        _backend = new VsockBackend(_settings.GuestCid, _settings.QueueSize, new BackendEvents(this), new AkkaDeviceLog(_log));
        var session = new VhostUserSession(_backend, MmapMemoryMapper.Instance, m => _log.Debug("vhost-user: {0}", m));
        _vmm = new VmmConnection(socket, session);
        _vmmRegistration = _loop.Add(fd, EpollEvents.In | EpollEvents.OneShot, _vmmSignal);
        _log.Info("VMM connected on {0}", _settings.Socket);
    }

    /// <summary>
    /// The VMM socket is readable, writable or hung up: flush waiting replies, handle a bounded batch of
    /// complete requests (<see cref="VmmConnection.MessagesPerReadable"/>; the one-shot registration is
    /// re-armed after, level-triggered, so more waiting requests come back as a new message behind the
    /// rings' work). A malformed request, a reply overflow or a socket error ends this VMM's session only.
    /// </summary>
    private void OnVmmReady(uint events)
    {
        if (_vmm is not { } vmm)
            return;
        try
        {
            if ((events & (EpollEvents.Out | EpollEvents.Err | EpollEvents.Hup)) != 0 && vmm.WantsWritable)
                vmm.OnWritable();
            if (vmm.OnReadable() == VmmReadResult.Closed)
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
        _loop.Modify(_vmmRegistration, EpollEvents.In | (vmm.WantsWritable ? EpollEvents.Out : 0) | EpollEvents.OneShot);
        ArmVmmStallTimer();
        if (EndVmmSessionIfGuestMemoryLost())
            return;
        var running = _backend is { IsRunning: true };
        if (running)
        {
            // A request may have started the rings while the guest already queued work.
            RunTx();
            ScheduleRx();
        }
        else if (_driverRunning)
        {
            // The driver stopped (guest reset, reboot or shutdown: rings disabled and stopped). The
            // guest forgets its sockets, so ours go too; the VMM itself stays connected.
            DropAllConnections("the guest driver stopped");
            ResetSiblingStreams();
        }
        _driverRunning = running;
    }

    /// <summary>One timer, at the nearest <see cref="VmmTimeouts"/> deadline, only while the VMM is stalled.</summary>
    private void ArmVmmStallTimer()
    {
        if (_vmm?.NextStallCheck is { } due)
            Timers.StartSingleTimer(VmmStallTimer, CheckVmmStall.Instance, due);
        else if (Timers.IsTimerActive(VmmStallTimer))
            Timers.Cancel(VmmStallTimer);
    }

    private void OnCheckVmmStall()
    {
        if (_vmm is not { } vmm)
            return;
        var stall = vmm.CheckStall();
        if (stall == VmmStall.None)
        {
            ArmVmmStallTimer(); // the stall ended, or moved on to a later deadline
            return;
        }
        _log.Warning("{0} on {1}; disconnecting it", vmm.Describe(stall), _settings.Socket);
        EndVmmSession(stall == VmmStall.PartialMessage ? "stalled mid-request" : "replies unread");
    }

    /// <summary>
    /// After a ring turn or a request: if the VMM truncated a guest memory file under our mapping (the
    /// SIGBUS guard repaired the fault and marked the region), its guest's memory means nothing any more.
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
        if (_vmm is null)
            return;
        _log.Info("VMM on {0} gone ({1}); dropping the guest's connections and waiting for a new VMM", _settings.Socket, reason);
        _loop.Remove(_vmmRegistration);
        _vmmRegistration = default;
        if (Timers.IsTimerActive(VmmStallTimer))
            Timers.Cancel(VmmStallTimer);
        _backend?.Reset();
        ResetSiblingStreams();
        _vmm.Dispose(); // the session (guest memory, ring fds), held fds, queued replies, the socket
        _backend?.Dispose();
        _vmm = null;
        _backend = null;
        _rxScheduled = false;
        _driverRunning = false;
    }
}
