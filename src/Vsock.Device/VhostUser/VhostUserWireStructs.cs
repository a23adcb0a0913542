using System.Runtime.InteropServices;

namespace Vsock.Device.VhostUser;

// The vhost-user wire structs, host-endian and packed exactly as QEMU's (hw/virtio/vhost-user.c,
// linux/vhost_types.h). Each has a size/offset test; payload sizes are checked against them before
// any field is read.

/// <summary>Every message starts with this (12 bytes); <see cref="Size"/> payload bytes follow.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VhostUserHeader
{
    public VhostUserRequest Request;
    public uint Flags;
    public uint Size;
}

/// <summary>A region of guest RAM as SET_MEM_TABLE / ADD_MEM_REG describe it (32 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VhostUserMemoryRegion
{
    public ulong GuestPhysicalAddress;
    public ulong MemorySize;
    /// <summary>The front-end's virtual address of the region (what SET_VRING_ADDR speaks in).</summary>
    public ulong UserAddress;
    /// <summary>Offset of the region in the attached fd.</summary>
    public ulong MmapOffset;

    public override readonly string ToString() =>
        $"gpa 0x{GuestPhysicalAddress:x} size 0x{MemorySize:x} uaddr 0x{UserAddress:x} offset 0x{MmapOffset:x}";
}

/// <summary>SET_MEM_TABLE's fixed part (8 bytes); <see cref="RegionCount"/> regions follow.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VhostUserMemoryTableHeader
{
    public uint RegionCount;
    public uint Padding;
}

/// <summary>ADD_MEM_REG / REM_MEM_REG payload (40 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VhostUserSingleMemoryRegion
{
    public ulong Padding;
    public VhostUserMemoryRegion Region;
}

/// <summary>struct vhost_vring_state (8 bytes): SET_VRING_NUM/BASE/ENABLE, GET_VRING_BASE.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VhostUserVringState
{
    public uint Index;
    public uint Num;
}

/// <summary>struct vhost_vring_addr (40 bytes). The three ring addresses are front-end virtual addresses.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VhostUserVringAddr
{
    /// <summary>VHOST_VRING_F_LOG: dirty logging of the used ring (migration), the only defined flag.</summary>
    public const uint LogFlag = 1;

    public uint Index;
    public uint Flags;
    public ulong DescUserAddress;
    public ulong UsedUserAddress;
    public ulong AvailUserAddress;
    public ulong LogGuestAddress;
}

/// <summary>GET_CONFIG / SET_CONFIG fixed part (12 bytes); <see cref="Size"/> config bytes follow.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VhostUserConfigHeader
{
    /// <summary>VHOST_SET_CONFIG_TYPE_MIGRATION; 0 is a plain front-end write.</summary>
    public const uint MigrationFlag = 1;

    public uint Offset;
    public uint Size;
    public uint Flags;
}
