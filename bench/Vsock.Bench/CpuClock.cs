using System.Diagnostics;

namespace Vsock.Bench;

/// <summary>
/// CPU time from the kernel's CPU-time clocks: <c>clock_gettime</c> with a clock id made from a pid or a
/// tid, as glibc's <c>clock_getcpuclockid</c>/<c>pthread_getcpuclockid</c> make them. Nanosecond
/// resolution, and a process's clock includes its threads that have already exited; /proc/PID/stat counts
/// in 10 ms ticks, too coarse for a one-second measurement of a thread.
/// </summary>
internal static class CpuClock
{
    private const int ThreadCpuTimeId = 3; // CLOCK_THREAD_CPUTIME_ID
    private const int CpuClockSched = 2;   // CPUCLOCK_SCHED: time on a CPU, as the scheduler counts it
    private const int CpuClockPerThread = 4;

    /// <summary>All threads of <paramref name="pid"/>, dead ones included.</summary>
    public static TimeSpan OfProcess(int pid) => Native.ReadClock((~pid << 3) | CpuClockSched);

    public static TimeSpan OfThread(int tid) => Native.ReadClock((~tid << 3) | CpuClockSched | CpuClockPerThread);

    public static TimeSpan OfCurrentThread() => Native.ReadClock(ThreadCpuTimeId);

    /// <summary>
    /// Threads of this process whose name starts with <paramref name="prefix"/> (/proc/self/task/*/comm;
    /// Linux keeps the first 15 bytes of a thread's name).
    /// </summary>
    public static int[] ThreadsNamed(string prefix)
    {
        var found = new List<int>();
        foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(task, "comm")).StartsWith(prefix, StringComparison.Ordinal)
                    && int.TryParse(Path.GetFileName(task), out var tid))
                    found.Add(tid);
            }
            catch (IOException)
            {
                // the thread ended while we looked
            }
        }
        return [.. found];
    }
}

/// <summary>CPU-seconds per second of a measurement (1.00 = one CPU busy all the time) for each side.</summary>
/// <param name="Daemon">The daemon process, all its threads.</param>
/// <param name="Driver">This process, all its threads (synthetic guests, host applications, the runtime's own).</param>
/// <param name="GuestDriver">The synthetic guests' driver threads (which also run the in-driver guest applications).</param>
/// <param name="HostApps">The host application threads that reported their time (<see cref="CpuMeter.AddHostThread"/>).</param>
/// <param name="Machine">Every CPU of the machine, all processes (/proc/stat, 10 ms ticks): above daemon + driver, other programs ran meanwhile.</param>
internal readonly record struct CpuUse(double Seconds, double Daemon, double Driver, double GuestDriver, double HostApps, double Machine);

/// <summary>Takes the CPU clocks of the daemon, this process and the synthetic guests' driver threads at start and at <see cref="Stop"/>.</summary>
internal sealed class CpuMeter
{
    /// <summary>The synthetic guest names its driver thread <c>synthetic-guest-cid-N</c>; Linux keeps 15 bytes.</summary>
    private const string GuestDriverThreadName = "synthetic-guest";

    private readonly int _daemonPid;
    private readonly int[] _guestThreads;
    private readonly TimeSpan _daemonStart;
    private readonly TimeSpan _driverStart;
    private readonly TimeSpan _guestStart;
    private readonly long _wallStart;
    private readonly long _machineStart;
    private long _hostTicks;

    private CpuMeter(int daemonPid)
    {
        _daemonPid = daemonPid;
        _guestThreads = CpuClock.ThreadsNamed(GuestDriverThreadName);
        _guestStart = GuestTime();
        _daemonStart = CpuClock.OfProcess(daemonPid);
        _driverStart = CpuClock.OfProcess(Environment.ProcessId);
        _machineStart = MachineBusyTicks();
        _wallStart = Stopwatch.GetTimestamp();
    }

    public static CpuMeter Start(DaemonProcess daemon) => new(daemon.Pid);

    /// <summary>A host application thread's own CPU time; call it at the end of the thread (see <see cref="HostSockets.RunThread"/>).</summary>
    public void AddHostThread(TimeSpan cpu) => Interlocked.Add(ref _hostTicks, cpu.Ticks);

    public CpuUse Stop()
    {
        var seconds = Stopwatch.GetElapsedTime(_wallStart).TotalSeconds;
        var daemon = CpuClock.OfProcess(_daemonPid) - _daemonStart;
        var driver = CpuClock.OfProcess(Environment.ProcessId) - _driverStart;
        var guest = GuestTime() - _guestStart;
        var machine = (MachineBusyTicks() - _machineStart) / (double)UserHz;
        return new CpuUse(seconds, daemon.TotalSeconds / seconds, driver.TotalSeconds / seconds, guest.TotalSeconds / seconds,
            TimeSpan.FromTicks(Interlocked.Read(ref _hostTicks)).TotalSeconds / seconds, machine / seconds);
    }

    /// <summary>/proc/stat counts in USER_HZ, 100 on Linux for every architecture .NET runs on.</summary>
    private const int UserHz = 100;

    /// <summary>
    /// Busy time of all CPUs from /proc/stat's "cpu" line: user, nice, system, irq, softirq and steal
    /// (time the hypervisor gave to someone else), i.e. everything but idle and iowait.
    /// </summary>
    private static long MachineBusyTicks()
    {
        var line = File.ReadLines("/proc/stat").First(l => l.StartsWith("cpu ", StringComparison.Ordinal));
        var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(v => long.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        return f[0] + f[1] + f[2] + f[5] + f[6] + (f.Length > 7 ? f[7] : 0);
    }

    private TimeSpan GuestTime()
    {
        var sum = TimeSpan.Zero;
        foreach (var tid in _guestThreads)
            sum += CpuClock.OfThread(tid);
        return sum;
    }
}
