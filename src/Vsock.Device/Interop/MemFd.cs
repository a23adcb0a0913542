using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vsock.Device.Interop;

/// <summary>File seals (F_ADD_SEALS / F_GET_SEALS, &lt;linux/fcntl.h&gt;): what nobody may do to a memfd any more.</summary>
[Flags]
public enum FileSeals
{
    None = 0,
    /// <summary>F_SEAL_SEAL: no more seals can be added.</summary>
    Seal = 0x1,
    /// <summary>F_SEAL_SHRINK: the file cannot be made smaller (ftruncate down fails with EPERM).</summary>
    Shrink = 0x2,
    /// <summary>F_SEAL_GROW: the file cannot be made larger.</summary>
    Grow = 0x4,
    /// <summary>F_SEAL_WRITE: the contents cannot change.</summary>
    Write = 0x8,
    /// <summary>F_SEAL_FUTURE_WRITE: no new writable mappings or writes; existing mappings keep writing.</summary>
    FutureWrite = 0x10,
}

/// <summary>Anonymous shared memory files (memfd_create), the kind a VMM hands us as guest RAM, and their seals.</summary>
public static class MemFd
{
    /// <summary>
    /// A close-on-exec memfd of <paramref name="size"/> bytes (zero-filled). With
    /// <paramref name="allowSealing"/> (MFD_ALLOW_SEALING, as QEMU's memory-backend-memfd creates guest
    /// RAM) seals can be added later; without it the memfd is born with F_SEAL_SEAL.
    /// </summary>
    public static SafeFileHandle Create(string name, long size, bool allowSealing = false)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        var fd = Libc.MemfdCreate(name, Libc.MFD_CLOEXEC | (allowSealing ? Libc.MFD_ALLOW_SEALING : 0));
        if (fd < 0)
            throw LinuxException.FromLastError($"memfd_create {name}");
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            Truncate(handle, size);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
        return handle;
    }

    /// <summary>ftruncate: sets the file's size (a VMM shrinking guest RAM under us does this).</summary>
    public static void Truncate(SafeHandle fd, long size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        if (Libc.Ftruncate(fd, size) != 0)
            throw LinuxException.FromLastError($"ftruncate to {size} bytes");
    }

    /// <summary>
    /// The file's seals; null when the file cannot carry seals at all (EINVAL: not a shmem or hugetlbfs
    /// file). A memfd created without MFD_ALLOW_SEALING, and a plain file on tmpfs (/dev/shm) or
    /// hugetlbfs, report <see cref="FileSeals.Seal"/>: sealable in kind, closed to new seals.
    /// </summary>
    public static FileSeals? GetSeals(SafeHandle fd)
    {
        var seals = Libc.Fcntl(fd, Libc.F_GET_SEALS, 0);
        if (seals >= 0)
            return (FileSeals)seals;
        var errno = Marshal.GetLastPInvokeError();
        if (errno == Errno.EINVAL)
            return null;
        throw new LinuxException(errno, "fcntl F_GET_SEALS");
    }

    /// <summary>F_ADD_SEALS. Fails with EPERM when F_SEAL_SEAL is set or the fd is not open for writing.</summary>
    public static void AddSeals(SafeHandle fd, FileSeals seals)
    {
        if (Libc.Fcntl(fd, Libc.F_ADD_SEALS, (int)seals) != 0)
            throw LinuxException.FromLastError($"fcntl F_ADD_SEALS {seals}");
    }
}
