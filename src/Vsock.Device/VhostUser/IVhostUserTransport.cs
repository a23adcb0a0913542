using Microsoft.Win32.SafeHandles;

namespace Vsock.Device.VhostUser;

/// <summary>
/// The byte stream the session's messages travel on: the VMM's unix socket in production
/// (<see cref="UnixSocketTransport"/>), an in-memory fake in tests.
/// </summary>
public interface IVhostUserTransport
{
    /// <summary>
    /// Blocks until at least one byte is available and reads up to <c>buffer.Length</c> bytes; fds that
    /// arrive with them (SCM_RIGHTS) are appended to <paramref name="fds"/>, owned by the caller from then
    /// on. Returns the byte count, or 0 at end of stream.
    /// </summary>
    int Receive(Span<byte> buffer, List<SafeFileHandle> fds);

    /// <summary>Sends all of <paramref name="data"/> (a reply).</summary>
    void Send(ReadOnlySpan<byte> data);
}
