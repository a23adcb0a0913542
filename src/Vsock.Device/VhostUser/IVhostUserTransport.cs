using Microsoft.Win32.SafeHandles;

namespace Vsock.Device.VhostUser;

/// <summary>
/// The byte stream the session's messages travel on: the VMM's unix socket in production
/// (<see cref="UnixSocketTransport"/>), an in-memory fake in tests. Never blocks: both calls do what
/// can be done now and say so; the owner waits for readiness (EPOLLIN / EPOLLOUT) in its event loop.
/// Disposing it closes the underlying stream.
/// </summary>
public interface IVhostUserTransport : IDisposable
{
    /// <summary>
    /// Reads up to <c>buffer.Length</c> bytes that are already there; fds that arrive with them
    /// (SCM_RIGHTS) are appended to <paramref name="fds"/>, owned by the caller from then on. Returns the
    /// byte count, 0 at end of stream, or -1 when nothing is available yet (would block).
    /// </summary>
    int Receive(Span<byte> buffer, List<SafeFileHandle> fds);

    /// <summary>
    /// Sends as much of <paramref name="data"/> as fits now and returns how much that was: fewer bytes
    /// (possibly 0) when the peer is not reading. A vanished peer throws <see cref="IOException"/>.
    /// </summary>
    int Send(ReadOnlySpan<byte> data);
}
