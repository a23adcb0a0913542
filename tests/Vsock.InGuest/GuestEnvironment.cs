namespace Vsock.InGuest;

/// <summary>
/// Whether this process runs inside one of the rig's host-run guests: their kernel command line carries
/// <c>VT_HOSTRUN=1</c> (QemuGuestOptions.HostRoot), and inside the chroot /proc is the guest's own. The build
/// host must never open AF_VSOCK sockets (its vsock belongs to its own hypervisor), so every command that
/// does is gated on this.
/// </summary>
internal static class GuestEnvironment
{
    public const string GuestMarkerWord = "VT_HOSTRUN=1";

    public static bool IsTestGuest() => IsTestGuest(ReadOrEmpty("/proc/cmdline"));

    public static bool IsTestGuest(string kernelCommandLine) =>
        kernelCommandLine.Split([' ', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries).Contains(GuestMarkerWord);

    public static string KernelRelease => ReadOrEmpty("/proc/sys/kernel/osrelease").Trim();

    public static string Uptime => ReadOrEmpty("/proc/uptime").Split(' ')[0];

    private static string ReadOrEmpty(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }
}
