using System.Runtime.InteropServices;

namespace Vsock.Testing.HostSide;

/// <summary>Signals by PID: a test ends only the processes it started, by their id, and asks politely first.</summary>
public static partial class ProcessSignals
{
    private const int SigKill = 9;
    private const int SigTerm = 15;
    private const int SigCont = 18;
    private const int SigStop = 19;

    /// <summary>SIGTERM; false if the process is already gone.</summary>
    public static bool Terminate(int pid) => Kill(pid, SigTerm) == 0;

    /// <summary>SIGKILL (a crash, as far as the process's peers can tell); false if the process is already gone.</summary>
    public static bool KillNow(int pid) => Kill(pid, SigKill) == 0;

    /// <summary>SIGSTOP: the process stops answering but its sockets stay open (only a failure detector notices).</summary>
    public static bool Freeze(int pid) => Kill(pid, SigStop) == 0;

    /// <summary>SIGCONT after <see cref="Freeze"/>.</summary>
    public static bool Thaw(int pid) => Kill(pid, SigCont) == 0;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
