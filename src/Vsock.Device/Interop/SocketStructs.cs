using System.Runtime.InteropServices;

namespace Vsock.Device.Interop;

// The C structs sendmsg/recvmsg, poll and setsockopt take, laid out as glibc declares them for
// LP64 Linux (x86_64 and aarch64 agree). Sizes and offsets are pinned by NativeLayoutTests.

/// <summary><c>struct iovec</c>: 16 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IoVec
{
    public void* Base;
    public nuint Length;
}

/// <summary><c>struct msghdr</c>: 56 bytes (4 bytes of padding after <c>msg_namelen</c> and at the end).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct MsgHdr
{
    public void* Name;
    public uint NameLength;
    public IoVec* Iov;
    public nuint IovLength;
    public void* Control;
    public nuint ControlLength;
    public int Flags;
}

/// <summary><c>struct cmsghdr</c>: 16 bytes; the payload follows at <see cref="ControlMessage.Data"/>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct CMsgHdr
{
    public nuint Length;
    public int Level;
    public int Type;
}

/// <summary><c>struct pollfd</c>: 8 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PollFd
{
    public int Fd;
    public short Events;
    public short ReturnedEvents;
}

/// <summary><c>struct sockaddr_un</c>: 110 bytes, the path is NUL-terminated inside <see cref="Path"/>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct SockAddrUn
{
    public const int PathCapacity = 108;

    public ushort Family;
    public fixed byte Path[PathCapacity];
}
