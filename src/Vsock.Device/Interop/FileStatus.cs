using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Vsock.Device.Interop;

/// <summary>
/// File type and size through statx(2). statx rather than stat because <c>struct statx</c> has one
/// layout on every architecture (256 bytes, <c>stx_mode</c> at 28, <c>stx_size</c> at 40), while
/// <c>struct stat</c> differs between x86_64 and aarch64.
/// </summary>
internal readonly record struct FileStatus(int Mode, ulong Size)
{
    private const int StatxSize = 256;
    private const int ModeOffset = 28;
    private const int SizeOffset = 40;

    public bool IsSocket => (Mode & Libc.S_IFMT) == Libc.S_IFSOCK;
    public bool IsRegularFile => (Mode & Libc.S_IFMT) == Libc.S_IFREG;

    /// <summary>Status of <paramref name="path"/> itself (a symlink is not followed); null if it does not exist.</summary>
    public static unsafe FileStatus? OfPath(string path)
    {
        var buffer = stackalloc byte[StatxSize];
        if (Libc.Statx(Libc.AT_FDCWD, path, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_TYPE, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == Errno.ENOENT)
                return null;
            throw new LinuxException(errno, $"statx {path}");
        }
        return Parse(buffer);
    }

    /// <summary>Status of an open fd; null where the kernel has no statx (older than 4.11).</summary>
    public static unsafe FileStatus? OfHandle(SafeHandle fd)
    {
        var buffer = stackalloc byte[StatxSize];
        if (Libc.Statx(fd, "", Libc.AT_EMPTY_PATH, Libc.STATX_TYPE | Libc.STATX_SIZE, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == Errno.ENOSYS)
                return null;
            throw new LinuxException(errno, "statx of a file descriptor");
        }
        return Parse(buffer);
    }

    private static unsafe FileStatus Parse(byte* buffer)
    {
        var span = new ReadOnlySpan<byte>(buffer, StatxSize);
        return new FileStatus(
            BinaryPrimitives.ReadUInt16LittleEndian(span[ModeOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(span[SizeOffset..]));
    }
}
