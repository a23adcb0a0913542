using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.VhostUser;

namespace Vsock.Device.Tests.VhostUser;

/// <summary>Builds requests the way a front-end (QEMU) lays them out.</summary>
internal static class Frontend
{
    public static byte[] Bytes<T>(T value) where T : unmanaged => MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)).ToArray();

    public static byte[] U64(ulong value) => Bytes(value);

    public static byte[] State(uint index, uint num) => Bytes(new VhostUserVringState { Index = index, Num = num });

    public static byte[] Addr(uint index, ulong desc, ulong used, ulong avail, uint flags = 0) =>
        Bytes(new VhostUserVringAddr { Index = index, Flags = flags, DescUserAddress = desc, UsedUserAddress = used, AvailUserAddress = avail });

    public static VhostUserMemoryRegion Region(ulong gpa, ulong size, ulong uaddr, ulong offset = 0) =>
        new() { GuestPhysicalAddress = gpa, MemorySize = size, UserAddress = uaddr, MmapOffset = offset };

    public static byte[] MemTable(params VhostUserMemoryRegion[] regions)
    {
        var bytes = new List<byte>(Bytes(new VhostUserMemoryTableHeader { RegionCount = (uint)regions.Length }));
        foreach (var r in regions)
            bytes.AddRange(Bytes(r));
        return [.. bytes];
    }

    public static byte[] SingleRegion(VhostUserMemoryRegion region) => Bytes(new VhostUserSingleMemoryRegion { Region = region });

    /// <summary>GET_CONFIG as QEMU sends it: the header, then <paramref name="size"/> zero bytes.</summary>
    public static byte[] Config(uint offset, uint size, uint flags = 0, byte[]? data = null) =>
        [.. Bytes(new VhostUserConfigHeader { Offset = offset, Size = size, Flags = flags }), .. data ?? new byte[size]];

    public static byte[] Encode(VhostUserRequest request, byte[]? payload = null, bool needReply = false)
    {
        payload ??= [];
        var buffer = new byte[VhostUserCodec.HeaderSize + payload.Length];
        VhostUserCodec.EncodeRequest(request, payload, buffer, needReply ? VhostUserCodec.NeedReplyFlag : 0);
        return buffer;
    }

    public static VhostUserMessage Message(VhostUserRequest request, byte[]? payload = null, bool needReply = false, params SafeFileHandle[] fds) =>
        new(request, VhostUserCodec.Version | (needReply ? VhostUserCodec.NeedReplyFlag : 0), payload ?? [], fds);

    /// <summary>Splits a reply into its header and payload (no validation: the tests check the fields).</summary>
    public static (VhostUserHeader Header, byte[] Payload) ParseReply(ReadOnlySpan<byte> reply)
    {
        var header = MemoryMarshal.Read<VhostUserHeader>(reply);
        return (header, reply[VhostUserCodec.HeaderSize..].ToArray());
    }

    public static ulong ReplyU64(ReadOnlySpan<byte> reply)
    {
        var (header, payload) = ParseReply(reply);
        Assert.Equal(VhostUserCodec.ReplyFlag | VhostUserCodec.Version, header.Flags);
        Assert.Equal(8u, header.Size);
        return MemoryMarshal.Read<ulong>(payload);
    }
}
