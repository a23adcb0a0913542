namespace Vsock.E2E.Tests.Rig;

/// <summary>
/// How a host-run guest (<see cref="QemuGuestOptions.HostRoot"/>) sees the host's files: the whole root,
/// read-only, except for the directories the guest covers with its own mounts (tests/e2e/guest/init.sh).
/// The host's /tmp, where test scenarios keep their files, stays readable at <see cref="HostTmpInGuest"/>.
/// </summary>
public static class HostRoot
{
    public const string HostTmpInGuest = "/run/host-tmp";

    // Covered by the guest's proc, sysfs, devtmpfs and tmpfs mounts.
    private static readonly string[] Hidden = ["/proc", "/sys", "/dev", "/run"];

    // Covered by the guest's own tmpfs too, but bound aside first (init.sh), so a checkout there (a CI
    // clone under /tmp or /root, say) stays reachable.
    private static readonly (string Host, string Guest)[] BoundAside =
    [
        ("/tmp", HostTmpInGuest),
        ("/var/tmp", "/run/host-var-tmp"),
        ("/root", "/run/host-root"),
    ];

    /// <summary>The path under which a program inside the guest finds the host file <paramref name="hostPath"/>.</summary>
    public static string GuestPath(string hostPath)
    {
        var path = Path.GetFullPath(hostPath);
        foreach (var (host, guest) in BoundAside)
        {
            if (IsUnder(path, host))
                return guest + path[host.Length..];
        }
        var hidden = Hidden.FirstOrDefault(h => IsUnder(path, h));
        return hidden is null
            ? path
            : throw new ArgumentException($"{path} is hidden inside a host-run guest (the guest mounts its own {hidden})", nameof(hostPath));
    }

    private static bool IsUnder(string path, string directory) =>
        path == directory || path.StartsWith(directory + "/", StringComparison.Ordinal);
}
