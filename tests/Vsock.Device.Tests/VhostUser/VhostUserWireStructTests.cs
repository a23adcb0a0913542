using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Vsock.Device.VhostUser;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.VhostUser;

/// <summary>Layouts against QEMU's hw/virtio/vhost-user.c and linux/vhost_types.h.</summary>
public sealed class VhostUserWireStructTests
{
    private static int Offset<T>(string field) => (int)Marshal.OffsetOf<T>(field);

    [Fact]
    public void Header_is_12_bytes_request_flags_size()
    {
        Assert.Equal(12, Unsafe.SizeOf<VhostUserHeader>());
        Assert.Equal(12, VhostUserCodec.HeaderSize);
        Assert.Equal(0, Offset<VhostUserHeader>(nameof(VhostUserHeader.Request)));
        Assert.Equal(4, Offset<VhostUserHeader>(nameof(VhostUserHeader.Flags)));
        Assert.Equal(8, Offset<VhostUserHeader>(nameof(VhostUserHeader.Size)));
        Assert.Equal(sizeof(uint), Unsafe.SizeOf<VhostUserRequest>());
    }

    [Fact]
    public void Memory_region_is_32_bytes_gpa_size_uaddr_offset()
    {
        Assert.Equal(32, Unsafe.SizeOf<VhostUserMemoryRegion>());
        Assert.Equal(0, Offset<VhostUserMemoryRegion>(nameof(VhostUserMemoryRegion.GuestPhysicalAddress)));
        Assert.Equal(8, Offset<VhostUserMemoryRegion>(nameof(VhostUserMemoryRegion.MemorySize)));
        Assert.Equal(16, Offset<VhostUserMemoryRegion>(nameof(VhostUserMemoryRegion.UserAddress)));
        Assert.Equal(24, Offset<VhostUserMemoryRegion>(nameof(VhostUserMemoryRegion.MmapOffset)));
    }

    [Fact]
    public void Memory_table_header_is_8_bytes_and_a_full_qemu_table_is_264()
    {
        Assert.Equal(8, Unsafe.SizeOf<VhostUserMemoryTableHeader>());
        Assert.Equal(0, Offset<VhostUserMemoryTableHeader>(nameof(VhostUserMemoryTableHeader.RegionCount)));
        Assert.Equal(4, Offset<VhostUserMemoryTableHeader>(nameof(VhostUserMemoryTableHeader.Padding)));
        Assert.Equal(264, Unsafe.SizeOf<VhostUserMemoryTableHeader>() + VhostUserSession.MaxMemTableRegions * Unsafe.SizeOf<VhostUserMemoryRegion>());
    }

    [Fact]
    public void Single_region_message_is_40_bytes_padding_then_region()
    {
        Assert.Equal(40, Unsafe.SizeOf<VhostUserSingleMemoryRegion>());
        Assert.Equal(0, Offset<VhostUserSingleMemoryRegion>(nameof(VhostUserSingleMemoryRegion.Padding)));
        Assert.Equal(8, Offset<VhostUserSingleMemoryRegion>(nameof(VhostUserSingleMemoryRegion.Region)));
    }

    [Fact]
    public void Vring_state_is_8_bytes_index_num()
    {
        Assert.Equal(8, Unsafe.SizeOf<VhostUserVringState>());
        Assert.Equal(0, Offset<VhostUserVringState>(nameof(VhostUserVringState.Index)));
        Assert.Equal(4, Offset<VhostUserVringState>(nameof(VhostUserVringState.Num)));
    }

    [Fact]
    public void Vring_addr_is_40_bytes_in_vhost_vring_addr_order()
    {
        Assert.Equal(40, Unsafe.SizeOf<VhostUserVringAddr>());
        Assert.Equal(0, Offset<VhostUserVringAddr>(nameof(VhostUserVringAddr.Index)));
        Assert.Equal(4, Offset<VhostUserVringAddr>(nameof(VhostUserVringAddr.Flags)));
        Assert.Equal(8, Offset<VhostUserVringAddr>(nameof(VhostUserVringAddr.DescUserAddress)));
        Assert.Equal(16, Offset<VhostUserVringAddr>(nameof(VhostUserVringAddr.UsedUserAddress)));
        Assert.Equal(24, Offset<VhostUserVringAddr>(nameof(VhostUserVringAddr.AvailUserAddress)));
        Assert.Equal(32, Offset<VhostUserVringAddr>(nameof(VhostUserVringAddr.LogGuestAddress)));
    }

    [Fact]
    public void Config_header_is_12_bytes_offset_size_flags()
    {
        Assert.Equal(12, Unsafe.SizeOf<VhostUserConfigHeader>());
        Assert.Equal(0, Offset<VhostUserConfigHeader>(nameof(VhostUserConfigHeader.Offset)));
        Assert.Equal(4, Offset<VhostUserConfigHeader>(nameof(VhostUserConfigHeader.Size)));
        Assert.Equal(8, Offset<VhostUserConfigHeader>(nameof(VhostUserConfigHeader.Flags)));
    }

    [Fact]
    public void Vring_addr_bytes_decode_as_qemu_writes_them()
    {
        // struct vhost_vring_addr { u32 index=1; u32 flags=0; u64 desc; u64 used; u64 avail; u64 log; }, little-endian host.
        byte[] wire =
        [
            1, 0, 0, 0, 0, 0, 0, 0,
            0x00, 0x10, 0, 0, 0, 0, 0, 0,
            0x00, 0x30, 0, 0, 0, 0, 0, 0,
            0x00, 0x20, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0,
        ];
        var addr = MemoryMarshal.Read<VhostUserVringAddr>(wire);
        Assert.Equal(1u, addr.Index);
        Assert.Equal(0x1000ul, addr.DescUserAddress);
        Assert.Equal(0x3000ul, addr.UsedUserAddress);
        Assert.Equal(0x2000ul, addr.AvailUserAddress);
    }

    [Fact]
    public void Request_codes_match_the_spec()
    {
        Assert.Equal(1u, (uint)VhostUserRequest.GetFeatures);
        Assert.Equal(5u, (uint)VhostUserRequest.SetMemTable);
        Assert.Equal(11u, (uint)VhostUserRequest.GetVringBase);
        Assert.Equal(18u, (uint)VhostUserRequest.SetVringEnable);
        Assert.Equal(21u, (uint)VhostUserRequest.SetBackendReqFd);
        Assert.Equal(24u, (uint)VhostUserRequest.GetConfig);
        Assert.Equal(34u, (uint)VhostUserRequest.ResetDevice);
        Assert.Equal(36u, (uint)VhostUserRequest.GetMaxMemSlots);
        Assert.Equal(38u, (uint)VhostUserRequest.RemMemReg);
        Assert.Equal(40u, (uint)VhostUserRequest.GetStatus);
        Assert.Equal(43u, (uint)VhostUserRequest.CheckDeviceState);
    }

    [Fact]
    public void Protocol_feature_bits_match_the_spec()
    {
        Assert.Equal(0, VhostUserProtocolFeatures.Mq);
        Assert.Equal(3, VhostUserProtocolFeatures.ReplyAck);
        Assert.Equal(5, VhostUserProtocolFeatures.BackendReq);
        Assert.Equal(9, VhostUserProtocolFeatures.Config);
        Assert.Equal(13, VhostUserProtocolFeatures.ResetDevice);
        Assert.Equal(15, VhostUserProtocolFeatures.ConfigureMemSlots);
        Assert.Equal(16, VhostUserProtocolFeatures.Status);
        Assert.Equal(1UL << 30, VirtioFeatures.Bit(VirtioFeatures.ProtocolFeatures));
        Assert.Equal(0x1_6100_0000UL,
            VirtioFeatures.Bit(VirtioFeatures.Version1) | VirtioFeatures.Bit(VirtioFeatures.NotifyOnEmpty) |
            VirtioFeatures.Bit(VirtioFeatures.RingEventIdx) | VirtioFeatures.Bit(VirtioFeatures.ProtocolFeatures));
    }
}
