namespace Vsock.E2E.Tests.Rig;

/// <summary>The signals the cluster tests need besides SIGTERM: a node killed, frozen and thawed, by PID.</summary>
internal static partial class ProcessSignals
{
    private const int SigKill = 9;
    private const int SigCont = 18;
    private const int SigStop = 19;

    /// <summary>SIGKILL: the process ends at once; the kernel closes its sockets (its peers see the TCP connections close).</summary>
    public static bool KillNow(int pid) => Kill(pid, SigKill) == 0;

    /// <summary>SIGSTOP: the process stops answering but its sockets stay open (only a failure detector notices).</summary>
    public static bool Freeze(int pid) => Kill(pid, SigStop) == 0;

    public static bool Thaw(int pid) => Kill(pid, SigCont) == 0;
}
