using Akka.Actor;
using Akka.Event;
using Microsoft.Win32.SafeHandles;
using Vsock.Actors.Connections;
using Vsock.Device.Interop;
using VsockApi = Vsock.Device.Interop.Vsock;

namespace Vsock.Actors.Device;

/// <summary>
/// The AF_VSOCK backend's listening side (<c>forward-listen</c>): each port is listened on with host
/// AF_VSOCK (any local CID, as the reference binds), and every accepted connection is forwarded to the
/// same port of the guest, seen as coming from CID 2.
/// </summary>
public sealed partial class DeviceActor
{
    private const ulong FirstForwardListenerToken = 100;
    private readonly List<(uint Port, SafeFileHandle Listener)> _forwardListeners = new();

    internal sealed record ForwardAcceptable(int Index) : INoSerializationVerificationNeeded, IDeadLetterSuppression;

    private void StartForwardListeners()
    {
        if (_settings.ForwardCid is null)
            return;
        foreach (var port in _settings.ForwardListen)
        {
            var listener = VsockApi.Listen(VsockApi.CidAny, port);
            _forwardListeners.Add((port, listener));
            _waiter!.Add((int)listener.DangerousGetHandle(), EpollEvents.In | EpollEvents.OneShot,
                FirstForwardListenerToken + (ulong)(_forwardListeners.Count - 1));
            _log.Info("forwarding host AF_VSOCK port {0} to guest CID {1} port {0}", port, _settings.GuestCid);
        }
    }

    private void OnForwardAcceptable(int index)
    {
        var (port, listener) = _forwardListeners[index];
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
        _waiter!.Modify((int)listener.DangerousGetHandle(), EpollEvents.In | EpollEvents.OneShot, FirstForwardListenerToken + (ulong)index);
    }

    private void StopForwardListeners()
    {
        foreach (var (_, listener) in _forwardListeners)
            listener.Dispose();
        _forwardListeners.Clear();
    }
}
