namespace Vsock.Device.Interop;

/// <summary>
/// Flag and option values from the glibc/kernel headers. They are the same on x86_64 and aarch64
/// (both use the asm-generic values for everything here); printed once with gcc against glibc 2.36 headers.
/// </summary>
internal static partial class Libc
{
    internal const uint MFD_CLOEXEC = 0x1;
    internal const uint MFD_ALLOW_SEALING = 0x2;

    internal const int PROT_READ = 0x1;
    internal const int PROT_WRITE = 0x2;
    internal const int MAP_SHARED = 0x1;
    internal const nint MAP_FAILED = -1;

    internal const int AT_FDCWD = -100;
    internal const int AT_SYMLINK_NOFOLLOW = 0x100;
    internal const int AT_EMPTY_PATH = 0x1000;
    internal const uint STATX_TYPE = 0x1;
    internal const uint STATX_SIZE = 0x200;
    internal const int S_IFMT = 0xF000;   // 0170000
    internal const int S_IFSOCK = 0xC000; // 0140000
    internal const int S_IFREG = 0x8000;  // 0100000

    internal const int F_GETFL = 3;
    internal const int F_SETFL = 4;
    internal const int F_ADD_SEALS = 1033; // F_LINUX_SPECIFIC_BASE + 9
    internal const int F_GET_SEALS = 1034; // F_LINUX_SPECIFIC_BASE + 10
    internal const int O_NONBLOCK = 0x800; // 04000

    internal const int EFD_CLOEXEC = 0x80000;
    internal const int EFD_NONBLOCK = 0x800;

    internal const int EPOLL_CLOEXEC = 0x80000;
    internal const int EPOLL_CTL_ADD = 1;
    internal const int EPOLL_CTL_DEL = 2;
    internal const int EPOLL_CTL_MOD = 3;

    internal const short POLLIN = 0x1;
    internal const short POLLOUT = 0x4;
    internal const short POLLNVAL = 0x20;

    internal const int AF_UNIX = 1;
    internal const int AF_VSOCK = 40;
    internal const int SOCK_STREAM = 1;
    internal const int SOCK_NONBLOCK = 0x800;
    internal const int SOCK_CLOEXEC = 0x80000;
    internal const int SOL_SOCKET = 1;
    internal const int SO_ERROR = 4;
    /// <summary>x86-64 (asm-generic) SO_SNDTIMEO_OLD: a <c>struct timeval</c> of two longs.</summary>
    internal const int SO_SNDTIMEO = 21;
    internal const int SCM_RIGHTS = 1;
    internal const int SHUT_RDWR = 2;

    internal const int MSG_CTRUNC = 0x8;
    internal const int MSG_DONTWAIT = 0x40;
    internal const int MSG_NOSIGNAL = 0x4000;
    internal const int MSG_CMSG_CLOEXEC = 0x40000000;
}
