using System.Runtime.InteropServices;

namespace Vsock.Bench;

/// <summary>The few libc calls the benchmark driver needs (the daemon's own interop lives in Vsock.Device).</summary>
internal static partial class Native
{
    private const int RlimitNofile = 7;
    public const int SigKill = 9;
    public const int SigTerm = 15;
    public const int SigUsr1 = 10;

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getrlimit(int resource, out RLimit limit);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setrlimit(int resource, in RLimit limit);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sched_setaffinity(int pid, nint size, in ulong mask);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sched_getaffinity(int pid, nint size, out ulong mask);

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int clock_gettime(int clockId, out TimeSpec time);

    [LibraryImport("libc")]
    public static partial int gettid();

    [LibraryImport("libc")]
    public static partial int getppid();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int signal);

    /// <summary>Raises the soft RLIMIT_NOFILE to the hard limit (the daemon, our child, inherits it); returns the new soft limit.</summary>
    public static ulong RaiseOpenFileLimit()
    {
        if (getrlimit(RlimitNofile, out var limit) != 0)
            throw new IOException($"getrlimit failed: errno {Marshal.GetLastPInvokeError()}");
        if (limit.Current < limit.Maximum)
        {
            var raised = new RLimit { Current = limit.Maximum, Maximum = limit.Maximum };
            if (setrlimit(RlimitNofile, raised) == 0)
                return raised.Current;
        }
        return limit.Current;
    }

    /// <summary>Pins one thread (a tid from /proc/PID/task) to the CPUs in <paramref name="mask"/>; false if it is gone.</summary>
    public static bool SetAffinity(int tid, ulong mask) => sched_setaffinity(tid, sizeof(ulong), mask) == 0;

    public static ulong GetAffinity(int tid) =>
        sched_getaffinity(tid, sizeof(ulong), out var mask) == 0 ? mask : throw new IOException($"sched_getaffinity failed: errno {Marshal.GetLastPInvokeError()}");

    /// <summary>clock_gettime; the clock ids are built in <see cref="CpuClock"/>.</summary>
    public static TimeSpan ReadClock(int clockId)
    {
        if (clock_gettime(clockId, out var time) != 0)
            throw new IOException($"clock_gettime({clockId}) failed: errno {Marshal.GetLastPInvokeError()}");
        return TimeSpan.FromTicks(time.Seconds * TimeSpan.TicksPerSecond + time.Nanoseconds / 100);
    }

    public static void Kill(int pid, int signal)
    {
        if (SysKill(pid, signal) != 0)
            throw new IOException($"kill({pid}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }
}
