using Microsoft.Win32.SafeHandles;

namespace Vsock.Device.Interop;

/// <summary>Anonymous shared memory files (memfd_create), the kind a VMM hands us as guest RAM.</summary>
public static class MemFd
{
    /// <summary>A close-on-exec memfd of <paramref name="size"/> bytes (zero-filled).</summary>
    public static SafeFileHandle Create(string name, long size)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        var fd = Libc.MemfdCreate(name, Libc.MFD_CLOEXEC);
        if (fd < 0)
            throw LinuxException.FromLastError($"memfd_create {name}");
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (Libc.Ftruncate(handle, size) != 0)
        {
            var error = LinuxException.FromLastError($"ftruncate memfd {name} to {size} bytes");
            handle.Dispose();
            throw error;
        }
        return handle;
    }
}
