using System.Net.Sockets;
using Vsock.Device.Interop;
using VsockApi = Vsock.Device.Interop.Vsock;

namespace Vsock.Actors.Connections;

/// <summary>
/// Where a guest-initiated stream goes on the host: a unix socket (<c>uds-path_PORT</c>) or a host
/// AF_VSOCK address (<c>forward-cid:PORT</c>). Both connect without blocking an actor and hand back a
/// connected <see cref="Socket"/>, whose asynchronous Send/Receive the connection actor uses.
/// </summary>
public abstract record HostEndpoint
{
    public abstract Task<Socket> ConnectAsync();

    public static HostEndpoint ForGuestPort(ConnectionOptions options, uint port) =>
        options.UdsPath is { } uds
            ? new UnixEndpoint($"{uds}_{port}")
            : new VsockEndpoint(options.ForwardCid ?? throw new InvalidOperationException("a VM needs uds-path or forward-cid"), port);
}

public sealed record UnixEndpoint(string Path) : HostEndpoint
{
    /// <summary>
    /// connect(2) on a pool thread: it returns at once unless the listener's backlog is full, and then
    /// it must not hold the VM's loop. Not the runtime's async connect: that would register the fd with
    /// the runtime's socket engine, whose thread would then wake for every packet of the stream.
    /// </summary>
    public override Task<Socket> ConnectAsync() => Task.Run(() => UnixSocket.Connect(Path).ToSocket());

    public override string ToString() => Path;
}

public sealed record VsockEndpoint(uint Cid, uint Port) : HostEndpoint
{
    /// <summary>How long a host AF_VSOCK connect may take before the guest's REQUEST is reset.</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(2);

    /// <summary>
    /// .NET cannot connect an AF_VSOCK socket asynchronously (its async connect does not know the
    /// family), so the non-blocking connect is finished with poll(2) on a pool thread: the wait is
    /// bounded by <see cref="ConnectTimeout"/> and never holds an actor.
    /// </summary>
    public override Task<Socket> ConnectAsync() => Task.Run(() =>
    {
        var fd = VsockApi.ConnectNonBlocking(Cid, Port, out var inProgress);
        try
        {
            if (inProgress)
            {
                if (Poll.WaitWritable(fd, (int)ConnectTimeout.TotalMilliseconds) == 0)
                    throw new SocketException((int)SocketError.TimedOut);
                var error = VsockApi.GetSocketError(fd);
                if (error != 0)
                    throw new SocketException(error);
            }
            return VsockApi.ToSocket(fd);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    });

    public override string ToString() => $"vsock {Cid}:{Port}";
}
