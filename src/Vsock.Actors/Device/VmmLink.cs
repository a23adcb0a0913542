using Vsock.Device.Backend;
using Vsock.Device.Diagnostics;
using Vsock.Device.Interop;
using Vsock.Device.Memory;
using Vsock.Device.Threading;
using Vsock.Device.VhostUser;

namespace Vsock.Actors.Device;

/// <summary>
/// The device's connection to one VMM: the vhost-user socket, the request reader and session, and the vsock backend
/// (rings, guest memory) the session drives. One at a time per VM; a new VMM gets fresh state.
/// </summary>
internal sealed class VmmLink : IDisposable
{
    /// <summary>A VMM whose request is half sent for this long is treated as broken and disconnected.</summary>
    private static readonly TimeSpan VmmReadTimeout = TimeSpan.FromSeconds(2);

    private readonly UnixSocket _socket;
    private readonly VhostUserReader _reader;
    private readonly VhostUserSession _session;
    private readonly byte[] _reply = new byte[VhostUserCodec.HeaderSize + VhostUserCodec.MaxPayloadSize];

    public VmmLink(UnixSocket socket, VsockBackend backend, Action<string> debugLog)
    {
        _socket = socket;
        socket.SetReceiveTimeout(VmmReadTimeout);
        Backend = backend;
        _session = new VhostUserSession(backend, MmapMemoryMapper.Instance, debugLog);
        _reader = new VhostUserReader(new UnixSocketTransport(socket));
    }

    public VsockBackend Backend { get; }

    public int Fd => _socket.Fd;

    public LoopRegistration Registration { get; set; }

    /// <summary>
    /// Reads and handles one request and sends its reply. False when the VMM closed the connection. A
    /// <see cref="VhostUserProtocolException"/> or <see cref="IOException"/> ends this VMM's session.
    /// </summary>
    public bool HandleOne()
    {
        using var message = _reader.ReadMessage();
        if (message is null)
            return false;
        var length = _session.Handle(message, _reply);
        if (length > 0)
            _socket.Send(_reply.AsSpan(0, length));
        return true;
    }

    public void Dispose()
    {
        Backend.Reset();
        _session.Dispose();
        Backend.Dispose();
        _socket.Dispose();
    }
}
