using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.Serialization;
using System.Text;
using Akka.Actor;
using Akka.Serialization;
using Vsock.Device.Packets;
using static Vsock.Actors.Routing.ClusterRegistryProtocol;
using static Vsock.Actors.Routing.GroupRouterProtocol;

namespace Vsock.Actors.Routing;

/// <summary>
/// The wire format of every message that crosses cluster nodes, bound to them in <c>hocon/vsock-cluster.hocon</c>
/// (Akka's serialization settings), so none falls back to Akka's default JSON serializer:
/// <list type="table">
/// <item><term><c>P</c> <see cref="SiblingPacket"/></term><description>the 44-byte virtio-vsock header as the guest wrote
/// it (little-endian), then exactly <c>len</c> payload bytes.</description></item>
/// <item><term><c>U</c> <see cref="SiblingUnreachable"/></term><description>the header, then the reason in UTF-8.</description></item>
/// <item><term><c>R</c> <see cref="SiblingGuestReset"/></term><description>the CID, 8 bytes.</description></item>
/// <item><term><c>V</c> <see cref="NodeVms"/></term><description>the replicated registry's value: address, uid, and per VM
/// its CID and groups (lengths as u16/u32, strings in UTF-8).</description></item>
/// </list>
/// Decoding checks every length against the bytes it has (a peer node is trusted, but a bad frame must fail as a
/// <see cref="SerializationException"/>, which Akka.Remote logs and drops, not as a wild read).
///
/// Copies: a packet's payload is already a pooled array copied out of the sending guest's memory (the one copy of
/// the local hop); <see cref="ToBinary"/> copies it into the wire array Akka.Remote wants, and the receiving side
/// copies the payload into a pooled array again, which the receiving device returns once the guest has it. The
/// sender's pooled array is not returned here: Akka.Remote's endpoint writer serializes a message again when its
/// transport refuses the first write, so this is not the message's last use; it is left to the GC.
/// </summary>
public sealed class SiblingMessageSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    /// <summary>Any identifier Akka does not use itself (its own are below 100).</summary>
    public const int SerializerIdentifier = 1313;

    private const string PacketManifest = "P";
    private const string UnreachableManifest = "U";
    private const string GuestResetManifest = "R";
    private const string NodeVmsManifest = "V";
    private const int MaxStringBytes = 4096;

    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public override int Identifier => SerializerIdentifier;

    public override string Manifest(object o) => o switch
    {
        SiblingPacket => PacketManifest,
        SiblingUnreachable => UnreachableManifest,
        SiblingGuestReset => GuestResetManifest,
        NodeVms => NodeVmsManifest,
        _ => throw new ArgumentException($"{nameof(SiblingMessageSerializer)} cannot serialize {o.GetType()}", nameof(o)),
    };

    public override byte[] ToBinary(object obj) => obj switch
    {
        SiblingPacket p => Packet(p),
        SiblingUnreachable u => Unreachable(u),
        SiblingGuestReset r => GuestReset(r),
        NodeVms v => Vms(v),
        _ => throw new ArgumentException($"{nameof(SiblingMessageSerializer)} cannot serialize {obj.GetType()}", nameof(obj)),
    };

    public override object FromBinary(byte[] bytes, string manifest) => manifest switch
    {
        PacketManifest => ReadPacket(bytes),
        UnreachableManifest => new SiblingUnreachable(ReadHeader(bytes), ReadUtf8(bytes.AsSpan(VsockConstants.HeaderSize))),
        GuestResetManifest => bytes.Length == sizeof(ulong)
            ? new SiblingGuestReset(BinaryPrimitives.ReadUInt64LittleEndian(bytes))
            : throw Bad($"a guest reset is 8 bytes, not {bytes.Length}"),
        NodeVmsManifest => ReadVms(bytes),
        _ => throw new SerializationException($"unknown manifest '{manifest}' for {nameof(SiblingMessageSerializer)}"),
    };

    private static byte[] Packet(SiblingPacket p)
    {
        var len = (int)p.Header.Len;
        if (len > 0 && (p.Data is null || p.Data.Length < len))
            throw new ArgumentException($"packet {p.Header} carries {p.Data?.Length ?? 0} payload bytes");
        var bytes = new byte[VsockConstants.HeaderSize + len];
        p.Header.Write(bytes);
        if (len > 0)
            p.Data.AsSpan(0, len).CopyTo(bytes.AsSpan(VsockConstants.HeaderSize));
        return bytes;
    }

    private static SiblingPacket ReadPacket(byte[] bytes)
    {
        var header = ReadHeader(bytes);
        if (header.Len > VsockConstants.MaxPacketPayload)
            throw Bad($"packet payload of {header.Len} bytes is over {VsockConstants.MaxPacketPayload}");
        if (bytes.Length - VsockConstants.HeaderSize != header.Len)
            throw Bad($"packet header says {header.Len} payload bytes, the frame has {bytes.Length - VsockConstants.HeaderSize}");
        if (header.Len == 0)
            return new SiblingPacket(header, null);
        var data = ArrayPool<byte>.Shared.Rent((int)header.Len);
        bytes.AsSpan(VsockConstants.HeaderSize).CopyTo(data);
        return new SiblingPacket(header, data);
    }

    private static byte[] Unreachable(SiblingUnreachable u)
    {
        var reason = Utf8.GetBytes(u.Reason.Length > MaxStringBytes / 4 ? u.Reason[..(MaxStringBytes / 4)] : u.Reason);
        var bytes = new byte[VsockConstants.HeaderSize + reason.Length];
        u.Header.Write(bytes);
        reason.CopyTo(bytes.AsSpan(VsockConstants.HeaderSize));
        return bytes;
    }

    private static byte[] GuestReset(SiblingGuestReset r)
    {
        var bytes = new byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, r.Cid);
        return bytes;
    }

    private static byte[] Vms(NodeVms v)
    {
        var writer = new ArrayBufferWriter<byte>(64);
        WriteString(writer, v.Address);
        WriteInt32(writer, v.Uid);
        WriteInt32(writer, v.Vms.Count);
        foreach (var vm in v.Vms)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(writer.GetSpan(sizeof(ulong)), vm.Cid);
            writer.Advance(sizeof(ulong));
            WriteInt32(writer, vm.Groups.Count);
            foreach (var group in vm.Groups)
                WriteString(writer, group);
        }
        return writer.WrittenSpan.ToArray();
    }

    private static NodeVms ReadVms(byte[] bytes)
    {
        var reader = new Reader(bytes);
        var address = reader.String();
        var uid = reader.Int32();
        var count = reader.Count(minBytesEach: sizeof(ulong) + sizeof(int));
        var vms = new List<NodeVm>(count);
        for (var i = 0; i < count; i++)
        {
            var cid = reader.UInt64();
            var groupCount = reader.Count(minBytesEach: sizeof(ushort));
            var groups = new string[groupCount];
            for (var g = 0; g < groupCount; g++)
                groups[g] = reader.String();
            vms.Add(new NodeVm(cid, groups));
        }
        reader.End();
        return new NodeVms(address, uid, vms);
    }

    private static VsockHeader ReadHeader(byte[] bytes) =>
        bytes.Length >= VsockConstants.HeaderSize
            ? VsockHeader.Read(bytes)
            : throw Bad($"a vsock header needs {VsockConstants.HeaderSize} bytes, the frame has {bytes.Length}");

    private static string ReadUtf8(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return Utf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw Bad($"invalid UTF-8: {e.Message}");
        }
    }

    private static void WriteString(ArrayBufferWriter<byte> writer, string value)
    {
        var count = Utf8.GetByteCount(value);
        if (count > MaxStringBytes)
            throw new ArgumentException($"'{value[..32]}...' is longer than {MaxStringBytes} bytes");
        BinaryPrimitives.WriteUInt16LittleEndian(writer.GetSpan(sizeof(ushort)), (ushort)count);
        writer.Advance(sizeof(ushort));
        writer.Advance(Utf8.GetBytes(value, writer.GetSpan(count)));
    }

    private static void WriteInt32(ArrayBufferWriter<byte> writer, int value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(writer.GetSpan(sizeof(int)), value);
        writer.Advance(sizeof(int));
    }

    private static SerializationException Bad(string problem) => new($"{nameof(SiblingMessageSerializer)}: {problem}");

    /// <summary>Reads the <c>V</c> format; every length is checked against what is left.</summary>
    private ref struct Reader(ReadOnlySpan<byte> bytes)
    {
        private ReadOnlySpan<byte> _rest = bytes;

        public ulong UInt64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(sizeof(ulong)));

        public int Int32() => BinaryPrimitives.ReadInt32LittleEndian(Take(sizeof(int)));

        public string String() => ReadUtf8(Take(BinaryPrimitives.ReadUInt16LittleEndian(Take(sizeof(ushort)))));

        /// <summary>A count of items that each take at least <paramref name="minBytesEach"/> bytes: more than fit is an error.</summary>
        public int Count(int minBytesEach)
        {
            var count = Int32();
            if (count < 0 || (long)count * minBytesEach > _rest.Length)
                throw Bad($"a count of {count} does not fit in the {_rest.Length} bytes left");
            return count;
        }

        public readonly void End()
        {
            if (_rest.Length != 0)
                throw Bad($"{_rest.Length} bytes left over");
        }

        private ReadOnlySpan<byte> Take(int count)
        {
            if (count > _rest.Length)
                throw Bad($"{count} bytes needed, {_rest.Length} left");
            var taken = _rest[..count];
            _rest = _rest[count..];
            return taken;
        }
    }
}
