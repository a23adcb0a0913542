using Microsoft.Win32.SafeHandles;
using Vsock.Device.Interop;

namespace Vsock.Device.VhostUser;

/// <summary>
/// The VMM's vhost-user connection as an <see cref="IVhostUserTransport"/>: owns the socket, puts it in
/// non-blocking mode, and reads and writes without ever waiting (recvmsg/sendmsg with MSG_DONTWAIT).
/// </summary>
public sealed class UnixSocketTransport : IVhostUserTransport
{
    public UnixSocketTransport(UnixSocket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        socket.SetNonBlocking(true);
        Socket = socket;
    }

    public UnixSocket Socket { get; }

    public int Receive(Span<byte> buffer, List<SafeFileHandle> fds)
    {
        try
        {
            return Socket.Receive(buffer, fds, dontWait: true);
        }
        catch (LinuxException e) when (e.Errno == Errno.ECONNRESET)
        {
            return 0; // the VMM went away with bytes unread: an end of stream like any other
        }
        catch (InvalidDataException e)
        {
            // More fds than a control buffer holds (MSG_CTRUNC): the ones that came are already closed.
            throw new VhostUserProtocolException(VhostUserError.TooManyFds, e.Message);
        }
    }

    public int Send(ReadOnlySpan<byte> data) => Socket.TrySend(data);

    public void Dispose() => Socket.Dispose();
}
