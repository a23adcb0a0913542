using Microsoft.Win32.SafeHandles;
using Vsock.Device.Interop;

namespace Vsock.Device.VhostUser;

/// <summary>
/// The VMM's vhost-user connection as an <see cref="IVhostUserTransport"/>. Reads block; on a
/// non-blocking socket they wait with poll, at most <see cref="ReadTimeout"/>. To stop a thread blocked in a read, shut the socket down
/// (<see cref="UnixSocket.Shutdown"/>): the reader then sees end of stream. Does not own the socket.
/// </summary>
public sealed class UnixSocketTransport(UnixSocket socket) : IVhostUserTransport
{
    public UnixSocket Socket { get; } = socket ?? throw new ArgumentNullException(nameof(socket));

    /// <summary>How long a read may wait for the rest of a message.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(2);

    public int Receive(Span<byte> buffer, List<SafeFileHandle> fds)
    {
        while (true)
        {
            int n;
            try
            {
                n = Socket.Receive(buffer, fds);
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
            if (n >= 0)
                return n;
            // Would block (non-blocking socket, or SO_RCVTIMEO expired): a VMM that stops in the middle
            // of a message must not hold the device's thread for ever.
            if (Poll.WaitReadable(Socket.Handle, (int)ReadTimeout.TotalMilliseconds) == 0)
                throw new IOException($"the VMM sent an incomplete vhost-user message and nothing more for {ReadTimeout.TotalSeconds} s");
        }
    }

    public void Send(ReadOnlySpan<byte> data) => Socket.Send(data);
}
