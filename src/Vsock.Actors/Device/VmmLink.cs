using Vsock.Device.Backend;
using Vsock.Device.Memory;
using Vsock.Device.Threading;
using Vsock.Device.VhostUser;

namespace Vsock.Actors.Device;

/// <summary>
/// The device's side of one VMM: its <see cref="VmmConnection"/> (the non-blocking vhost-user socket, reader,
/// session and reply queue; guest memory through the session) and the vsock backend the session drives (rings,
/// kick and call fds). One at a time per VM; a new VMM gets fresh state.
/// </summary>
internal sealed class VmmLink(VmmConnection connection, VsockBackend backend) : IDisposable
{
    public VmmConnection Connection { get; } = connection;

    public VsockBackend Backend { get; } = backend;

    public LoopRegistration Registration { get; set; }

    /// <summary>A region whose file the VMM truncated under our mapping (the SIGBUS guard caught the access), if any.</summary>
    public MemoryRegion? PoisonedRegion => Connection.PoisonedRegion;

    public void Dispose()
    {
        Backend.Reset();      // kicks unwatched, streams dropped (DeviceReset)
        Connection.Dispose(); // the session (guest memory, ring fds), held fds, queued replies, the socket
        Backend.Dispose();
    }
}
