using Microsoft.Win32.SafeHandles;
using Vsock.Device.Interop;

namespace Vsock.Device.VhostUser;

/// <summary>
/// The production <see cref="IVhostUserTransport"/>: the VMM's connected unix socket. The socket has a
/// receive timeout (set by its owner), so a VMM that sends half a message cannot block the device for
/// ever: the timeout surfaces as an <see cref="IOException"/> and that VMM is disconnected.
/// </summary>
public sealed class UnixSocketTransport(UnixSocket socket) : IVhostUserTransport
{
    public int Receive(Span<byte> buffer, List<SafeFileHandle> fds)
    {
        var n = socket.Receive(buffer, fds);
        if (n < 0)
            throw new IOException("the VMM stopped in the middle of a vhost-user message (receive timed out)");
        return n;
    }

    public void Send(ReadOnlySpan<byte> data) => socket.Send(data);
}
