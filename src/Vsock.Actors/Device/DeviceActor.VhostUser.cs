using Akka.Event;
using Akka.Actor;
using Vsock.Device.Backend;
using Vsock.Device.Interop;
using Vsock.Device.Threading;
using Vsock.Device.VhostUser;

namespace Vsock.Actors.Device;

/// <summary>The vhost-user side of the device: one VMM at a time on the <c>socket</c> path.</summary>
public sealed partial class DeviceActor
{
    private UnixSocket? _vmm;
    private LoopRegistration _vmmRegistration;
    private VhostUserReader? _reader;
    private VhostUserSession? _session;
    private VsockBackend? _backend;
    private bool _driverRunning;
    private readonly byte[] _reply = new byte[VhostUserCodec.HeaderSize + VhostUserCodec.MaxPayloadSize];

    /// <summary>A VMM whose request is half sent for this long is treated as broken and disconnected.</summary>
    private static readonly TimeSpan VmmReadTimeout = TimeSpan.FromSeconds(2);

    private void OnVmmAcceptable()
    {
        if (_vmmListener is null)
            return;
        UnixSocket? vmm;
        try
        {
            vmm = _vmmListener.Accept(nonBlocking: false);
        }
        catch (LinuxException e)
        {
            _log.Warning("accept on {0} failed: {1}", _settings.Socket, e.Message);
            vmm = null;
        }
        _loop.Modify(_vmmListenerRegistration, EpollEvents.In | EpollEvents.OneShot);
        if (vmm is null)
            return;
        if (_vmm is not null)
        {
            _log.Warning("a second VMM connected to {0} while one is being served; closing it", _settings.Socket);
            vmm.Dispose();
            return;
        }
        vmm.SetReceiveTimeout(VmmReadTimeout);
        _vmm = vmm;
        _backend = new VsockBackend(_settings.GuestCid, _settings.QueueSize, new BackendEvents(this), new AkkaDeviceLog(_log));
        _session = new VhostUserSession(_backend, MmapMemoryMapper.Instance, m => _log.Debug("vhost-user: {0}", m));
        _reader = new VhostUserReader(new UnixSocketTransport(vmm));
        _vmmRegistration = _loop.Add(vmm.Fd, EpollEvents.In | EpollEvents.OneShot, _vmmSignal);
        _log.Info("VMM connected on {0}", _settings.Socket);
    }

    /// <summary>
    /// One vhost-user request per readiness event (the registration is one-shot and re-armed after),
    /// so a chatty VMM cannot starve the rings. A malformed request ends this VMM's session only.
    /// </summary>
    private void OnVmmReadable()
    {
        if (_vmm is null || _reader is null || _session is null)
            return;
        try
        {
            using var message = _reader.ReadMessage();
            if (message is null)
            {
                EndVmmSession("the VMM closed the connection");
                return;
            }
            var length = _session.Handle(message, _reply);
            if (length > 0)
                _vmm.Send(_reply.AsSpan(0, length));
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
        _loop.Modify(_vmmRegistration, EpollEvents.In | EpollEvents.OneShot);
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

    /// <summary>Drops the VMM and everything that belonged to its guest; the listener stays for the next VMM.</summary>
    private void EndVmmSession(string reason)
    {
        if (_vmm is null)
            return;
        _log.Info("VMM on {0} gone ({1}); dropping the guest's connections and waiting for a new VMM", _settings.Socket, reason);
        _loop.Remove(_vmmRegistration);
        _vmmRegistration = default;
        _backend?.Reset();
        ResetSiblingStreams();
        _session?.Dispose();
        _backend?.Dispose();
        _vmm.Dispose();
        _vmm = null;
        _reader = null;
        _session = null;
        _backend = null;
        _rxScheduled = false;
        _driverRunning = false;
    }
}
