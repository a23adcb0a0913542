using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Interop;
using VsockApi = Vsock.Device.Interop.Vsock;

namespace Vsock.Actors.Connections;

/// <summary>
/// Where a guest-initiated stream goes on the host: a unix socket (<c>uds-path_PORT</c>) or a host AF_VSOCK address
/// (<c>forward-cid:PORT</c>), of the stream's type (SOCK_STREAM or SOCK_SEQPACKET: a listener of the other type
/// refuses at once). A connect that cannot block runs on the VM's loop (<see cref="TryConnectNow"/>), any other on a
/// pool thread; either hands back the connected fd,
/// which the stream then owns.
/// </summary>
public abstract record HostEndpoint
{
    public abstract Task<SafeFileHandle> ConnectAsync(TimeSpan timeout);

    /// <summary>
    /// Connects now if that cannot block (the VM's loop calls it): true with the socket, or true with an error, when
    /// the outcome is known; false when only a thread that may block can find out (<see cref="ConnectAsync"/>).
    /// </summary>
    public virtual bool TryConnectNow(out SafeFileHandle? socket, out string? error)
    {
        socket = null;
        error = null;
        return false;
    }

    /// <param name="guestBufAlloc">The guest's buffer (its REQUEST's buf_alloc): a host AF_VSOCK SEQPACKET socket
    /// advertises no more, so its peer refuses a message the guest could never take (EMSGSIZE), as Linux would.</param>
    public static HostEndpoint ForGuestPort(ConnectionSettings settings, uint port, SocketKind kind = SocketKind.Stream, uint guestBufAlloc = 0) =>
        settings.UdsPath is { } uds
            ? new UnixEndpoint($"{uds}_{port}", kind)
            : new VsockEndpoint(settings.ForwardCid ?? throw new InvalidOperationException("a VM needs uds-path or forward-cid"), port, kind,
                kind == SocketKind.Seqpacket ? guestBufAlloc : 0);
}

public sealed record UnixEndpoint(string Path, SocketKind Kind = SocketKind.Stream) : HostEndpoint
{
    /// <summary>
    /// connect(2) on a pool thread: it returns at once unless the listener's backlog is full, and then it must not
    /// hold the VM's loop (the reference blocks its event loop here). Not the runtime's async connect: that would
    /// register the fd with the runtime's socket engine, whose thread would then wake for every packet. The wait
    /// for a full backlog is bounded by <paramref name="timeout"/> (before, a listener that never accepted held a
    /// pool thread for ever per guest connect).
    /// </summary>
    public override Task<SafeFileHandle> ConnectAsync(TimeSpan timeout) => Task.Run(() =>
    {
        var socket = UnixSocket.Connect(Path, Kind, timeout);
        socket.SetNonBlocking(true);
        return socket.Handle;
    });

    /// <summary>
    /// A non-blocking unix connect completes or fails at once, so it runs on the loop and saves the guest a thread
    /// hop per connection; only a full listen backlog (EAGAIN) goes to <see cref="ConnectAsync"/>.
    /// </summary>
    public override bool TryConnectNow(out SafeFileHandle? socket, out string? error)
    {
        var connected = UnixSocket.TryConnectNonBlocking(Path, Kind, out var errno);
        socket = connected?.Handle;
        error = errno == 0 ? null : $"connect {Path}: {Marshal.GetPInvokeErrorMessage(errno)}";
        return errno != Errno.EAGAIN;
    }

    public override string ToString() => Kind == SocketKind.Seqpacket ? $"{Path} (SEQPACKET)" : Path;
}

/// <param name="BufferSize">When not 0, the socket's SO_VM_SOCKETS_BUFFER_SIZE (kept within Linux's default bounds).</param>
public sealed record VsockEndpoint(uint Cid, uint Port, SocketKind Kind = SocketKind.Stream, uint BufferSize = 0) : HostEndpoint
{
    /// <summary>A non-blocking connect finished with poll(2) on a pool thread, bounded by <paramref name="timeout"/>.</summary>
    public override Task<SafeFileHandle> ConnectAsync(TimeSpan timeout) => Task.Run(() =>
    {
        var fd = VsockApi.ConnectNonBlocking(Cid, Port, out var inProgress, Kind, BufferSize);
        try
        {
            if (inProgress)
            {
                if (Poll.WaitWritable(fd, (int)timeout.TotalMilliseconds) == 0)
                    throw new SocketException((int)SocketError.TimedOut);
                var error = VsockApi.GetSocketError(fd);
                if (error != 0)
                    throw new SocketException(error);
            }
            return fd;
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    });

    public override string ToString() => $"vsock {Cid}:{Port}{(Kind == SocketKind.Seqpacket ? " (SEQPACKET)" : "")}";
}
