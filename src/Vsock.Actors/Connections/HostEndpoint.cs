using System.Net.Sockets;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Interop;
using VsockApi = Vsock.Device.Interop.Vsock;

namespace Vsock.Actors.Connections;

/// <summary>
/// Where a guest-initiated stream goes on the host: a unix socket (<c>uds-path_PORT</c>) or a host AF_VSOCK address
/// (<c>forward-cid:PORT</c>), of the stream's type (SOCK_STREAM or SOCK_SEQPACKET: a listener of the other type
/// refuses at once). The connect runs on a pool thread, never on the VM's loop, and hands back the connected fd,
/// which the stream then owns.
/// </summary>
public abstract record HostEndpoint
{
    public abstract Task<SafeFileHandle> ConnectAsync(TimeSpan timeout);

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
    /// register the fd with the runtime's socket engine, whose thread would then wake for every packet.
    /// </summary>
    public override Task<SafeFileHandle> ConnectAsync(TimeSpan timeout) => Task.Run(() =>
    {
        var socket = UnixSocket.Connect(Path, Kind);
        socket.SetNonBlocking(true);
        return socket.Handle;
    });

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
