namespace Vsock.Bench;

/// <summary>
/// Where the driver (this process) and the daemon run on a small machine. Pinned: the daemon on the
/// last CPU, the driver (synthetic guest + host applications) on the others, so neither steals the
/// other's core; unpinned: the scheduler places every thread.
/// </summary>
internal static class CpuPlacement
{
    public static int CpuCount => Environment.ProcessorCount;

    public static ulong AllCpus => CpuCount >= 64 ? ulong.MaxValue : (1UL << CpuCount) - 1;

    public static int DaemonCpu => CpuCount - 1;

    public static ulong DaemonMask => 1UL << DaemonCpu;

    public static ulong DriverMask => CpuCount > 1 ? AllCpus & ~DaemonMask : AllCpus;

    /// <summary>
    /// Applies <paramref name="mask"/> to every thread of <paramref name="pid"/>. sched_setaffinity acts on
    /// one thread; threads created later inherit their creator's mask, so covering the existing ones
    /// covers the process.
    /// </summary>
    public static void Apply(int pid, ulong mask)
    {
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            if (int.TryParse(Path.GetFileName(task), out var tid))
                Native.SetAffinity(tid, mask);
        }
    }

    public static string Describe(ulong mask)
    {
        var cpus = Enumerable.Range(0, 64).Where(i => (mask & (1UL << i)) != 0).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return "CPU " + string.Join(",", cpus);
    }
}
