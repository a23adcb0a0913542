using Microsoft.Win32.SafeHandles;
using Vsock.Device.Interop;

namespace Vsock.Fuzz.Targets.VhostUser;

/// <summary>
/// The eventfds an input hands to the session (as kick, call and err fds, and as memory region fds, which the
/// fake mapper does not map). Remembers every one, so the target can prove all were closed once the session
/// ended: no leak, and (through <see cref="FakeMemoryMapper"/>) no use after close.
/// </summary>
internal sealed class FdLedger : IDisposable
{
    private readonly List<SafeFileHandle> _opened = [];

    public SafeFileHandle[] Open(int count)
    {
        var fds = new SafeFileHandle[count];
        for (var i = 0; i < count; i++)
        {
            fds[i] = EventFd.Create().Handle;
            _opened.Add(fds[i]);
        }
        return fds;
    }

    public int Count => _opened.Count;

    public int StillOpen => _opened.Count(fd => !fd.IsClosed);

    /// <summary>Closes whatever the code under test leaked, so one bad input cannot exhaust the process's fds.</summary>
    public void Dispose()
    {
        foreach (var fd in _opened)
            fd.Dispose();
        _opened.Clear();
    }
}
