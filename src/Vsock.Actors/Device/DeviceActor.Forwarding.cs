using Akka.Actor;
using Akka.Event;
using Microsoft.Win32.SafeHandles;
using Vsock.Actors.Connections;
using Vsock.Device.Interop;
using Vsock.Device.Threading;
using Vsock.Actors.Dispatch;
using VsockApi = Vsock.Device.Interop.Vsock;

namespace Vsock.Actors.Device;

/// <summary>
/// The AF_VSOCK backend's listening side (<c>forward-listen</c>): each port is listened on with host
/// AF_VSOCK (any local CID, as the reference binds), and every accepted connection is forwarded to the
/// same port of the guest, seen as coming from CID 2.
/// </summary>
public sealed partial class DeviceActor
{
    private readonly List<ForwardListener> _forwardListeners = new();

    private sealed record ForwardListener(uint Port, SafeFileHandle Listener, ReadinessSignal Signal)
    {
        public LoopRegistration Registration { get; set; }
    }

    internal sealed record ForwardAcceptable(int Index) : INoSerializationVerificationNeeded, IDeadLetterSuppression;

    private void StartForwardListeners()
    {
        if (_settings.ForwardCid is null)
            return;
        foreach (var port in _settings.ForwardListen)
        {
            var listener = VsockApi.Listen(VsockApi.CidAny, port);
            var forward = new ForwardListener(port, listener, new ReadinessSignal(Self, new ForwardAcceptable(_forwardListeners.Count)));
            _forwardListeners.Add(forward);
            forward.Registration = _loop.Add((int)listener.DangerousGetHandle(), EpollEvents.In | EpollEvents.OneShot, forward.Signal);
            _log.Info("forwarding host AF_VSOCK port {0} to guest CID {1} port {0}", port, _settings.GuestCid);
        }
    }

    private void OnForwardAcceptable(int index)
    {
        var (port, listener, _) = _forwardListeners[index];
        try
        {
            while (VsockApi.Accept(listener, out var peerCid, out var peerPort) is { } accepted)
            {
                _log.Debug("host AF_VSOCK {0}:{1} connected to forwarded port {2}", peerCid, peerPort, port);
                var socket = VsockApi.ToSocket(accepted);
                if (_backend is not { IsRunning: true })
                {
                    _log.Debug("closing forwarded connection: the guest driver is not running");
                    socket.Dispose();
                    continue;
                }
                StartConnection(ConnectionActor.ForForwardedClient(Self, _connectionOptions, socket, port));
            }
        }
        catch (LinuxException e)
        {
            _log.Warning("accept on forwarded AF_VSOCK port {0} failed: {1}", port, e.Message);
        }
        _loop.Modify(_forwardListeners[index].Registration, EpollEvents.In | EpollEvents.OneShot);
    }

    private void StopForwardListeners()
    {
        foreach (var forward in _forwardListeners)
        {
            _loop?.Remove(forward.Registration);
            forward.Listener.Dispose();
        }
        _forwardListeners.Clear();
    }
}
