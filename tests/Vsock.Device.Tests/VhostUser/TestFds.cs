using Microsoft.Win32.SafeHandles;

namespace Vsock.Device.Tests.VhostUser;

/// <summary>Real fds for messages (opened on /dev/null), remembered so a test can check each was closed.</summary>
internal sealed class TestFds
{
    private readonly List<SafeFileHandle> _opened = [];

    public SafeFileHandle Open()
    {
        var fd = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.Read);
        _opened.Add(fd);
        return fd;
    }

    public SafeFileHandle[] Open(int count) => Enumerable.Range(0, count).Select(_ => Open()).ToArray();

    public int Count => _opened.Count;

    /// <summary>Fds opened here and not closed yet (held in a list, so no finalizer can close them behind our back).</summary>
    public int StillOpen => _opened.Count(fd => !fd.IsClosed);

    public static int ProcessFdCount() => Directory.GetFiles("/proc/self/fd").Length;

    /// <summary>
    /// Open fds of the kinds the tests hand to a session (/dev/null here, memfds, eventfds). Unlike the raw
    /// count it ignores fds the runtime opens lazily for itself (its socket engine's epoll, for one).
    /// </summary>
    public static int SessionKindFdCount() => Directory.GetFiles("/proc/self/fd").Count(fd =>
    {
        try
        {
            var target = new FileInfo(fd).LinkTarget ?? "";
            return target == "/dev/null" || target.StartsWith("/memfd:", StringComparison.Ordinal) || target == "anon_inode:[eventfd]";
        }
        catch (IOException)
        {
            return false; // closed while we looked
        }
    });
}
