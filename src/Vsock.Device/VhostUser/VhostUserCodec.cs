using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Vsock.Device.VhostUser;

/// <summary>
/// Framing: a 12-byte host-endian header, then <c>size</c> payload bytes. Requests carry version 1 and
/// maybe NEED_REPLY; replies carry exactly REPLY|1 (QEMU's vhost_user_read_header rejects anything else).
/// </summary>
public static class VhostUserCodec
{
    public const int HeaderSize = 12;
    /// <summary>rust-vmm's MAX_MSG_SIZE: the largest payload we accept (QEMU's largest is far smaller).</summary>
    public const int MaxPayloadSize = 4096;
    public const int MaxMessageSize = HeaderSize + MaxPayloadSize;
    /// <summary>rust-vmm's MAX_ATTACHED_FD_ENTRIES.</summary>
    public const int MaxFds = 32;

    public const uint VersionMask = 0x3;
    public const uint Version = 0x1;
    public const uint ReplyFlag = 0x4;
    public const uint NeedReplyFlag = 0x8;
    private const uint DefinedFlags = VersionMask | ReplyFlag | NeedReplyFlag;

    /// <summary>
    /// Decodes and validates a request header. Any request code passes (the session names and refuses
    /// the ones it does not serve); everything else about the header must be right.
    /// </summary>
    public static VhostUserHeader DecodeHeader(ReadOnlySpan<byte> header)
    {
        if (header.Length < HeaderSize)
            throw new ArgumentException($"a header is {HeaderSize} bytes, got {header.Length}", nameof(header));
        var h = MemoryMarshal.Read<VhostUserHeader>(header);
        if ((h.Flags & VersionMask) != Version)
            throw new VhostUserProtocolException(VhostUserError.BadHeader,
                $"{Name(h.Request)}: protocol version {h.Flags & VersionMask}, expected {Version} (flags 0x{h.Flags:x})");
        if ((h.Flags & ReplyFlag) != 0)
            throw new VhostUserProtocolException(VhostUserError.BadHeader,
                $"{Name(h.Request)}: the front-end sent a message with the REPLY flag (flags 0x{h.Flags:x})");
        if ((h.Flags & ~DefinedFlags) != 0)
            throw new VhostUserProtocolException(VhostUserError.BadHeader,
                $"{Name(h.Request)}: reserved header flag bits set (flags 0x{h.Flags:x})");
        if (h.Size > MaxPayloadSize)
            throw new VhostUserProtocolException(VhostUserError.BadHeader,
                $"{Name(h.Request)}: payload of {h.Size} bytes exceeds the {MaxPayloadSize}-byte limit");
        return h;
    }

    /// <summary>Writes a reply (header with REPLY|1, then the payload); returns the bytes written.</summary>
    public static int EncodeReply(VhostUserRequest request, ReadOnlySpan<byte> payload, Span<byte> destination) =>
        Encode(request, ReplyFlag | Version, payload, destination);

    public static int EncodeReply<T>(VhostUserRequest request, in T payload, Span<byte> destination) where T : unmanaged =>
        EncodeReply(request, MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in payload)), destination);

    /// <summary>Writes a request as a front-end would (version 1 plus <paramref name="extraFlags"/>, e.g. NEED_REPLY).</summary>
    public static int EncodeRequest(VhostUserRequest request, ReadOnlySpan<byte> payload, Span<byte> destination, uint extraFlags = 0) =>
        Encode(request, Version | extraFlags, payload, destination);

    private static int Encode(VhostUserRequest request, uint flags, ReadOnlySpan<byte> payload, Span<byte> destination)
    {
        if (payload.Length > MaxPayloadSize)
            throw new ArgumentException($"payload of {payload.Length} bytes exceeds {MaxPayloadSize}", nameof(payload));
        var total = HeaderSize + payload.Length;
        if (destination.Length < total)
            throw new ArgumentException($"destination holds {destination.Length} bytes, the message needs {total}", nameof(destination));
        var header = new VhostUserHeader { Request = request, Flags = flags, Size = (uint)payload.Length };
        MemoryMarshal.Write(destination, in header);
        payload.CopyTo(destination[HeaderSize..]);
        return total;
    }

    /// <summary>Reads a fixed-layout payload whose size the caller has already checked.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static T Read<T>(ReadOnlySpan<byte> payload) where T : unmanaged => MemoryMarshal.Read<T>(payload);

    /// <summary>"SET_VRING_ADDR"-style name for logs; unknown codes print as numbers.</summary>
    public static string Name(VhostUserRequest request) =>
        Enum.IsDefined(request) ? ToUpperSnake(request.ToString()) : $"request {(uint)request}";

    private static string ToUpperSnake(string name)
    {
        var chars = new System.Text.StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsUpper(name[i]))
                chars.Append('_');
            chars.Append(char.ToUpperInvariant(name[i]));
        }
        return chars.ToString();
    }
}
