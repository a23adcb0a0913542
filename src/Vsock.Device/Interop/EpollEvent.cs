using System.Runtime.InteropServices;

namespace Vsock.Device.Interop;

/// <summary>
/// <c>struct epoll_event</c> as x86_64 declares it: packed, 12 bytes (<c>data</c> at offset 4).
/// aarch64's kernel struct is the naturally aligned 16-byte one; <see cref="Epoll"/> converts to it
/// there, so callers use this one type everywhere.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct EpollEvent
{
    public uint Events;
    public ulong Data;

    public EpollEvent(uint events, ulong data)
    {
        Events = events;
        Data = data;
    }
}

/// <summary>The 16-byte epoll_event of architectures other than x86_64.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct AlignedEpollEvent
{
    public uint Events;
    public ulong Data;
}

/// <summary>EPOLL* event bits.</summary>
public static class EpollEvents
{
    public const uint In = 0x1;
    public const uint Out = 0x4;
    public const uint Err = 0x8;
    public const uint Hup = 0x10;
    public const uint RdHup = 0x2000;
    public const uint OneShot = 1u << 30;
    public const uint EdgeTriggered = 1u << 31;
}
