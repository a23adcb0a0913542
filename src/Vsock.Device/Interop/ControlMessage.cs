namespace Vsock.Device.Interop;

/// <summary>
/// The CMSG_* macros from &lt;sys/socket.h&gt;, ported for LP64 Linux (x86_64, aarch64): a 16-byte
/// <c>cmsghdr</c> and payloads aligned to <c>sizeof(size_t)</c> = 8 bytes.
/// <see cref="NextHeader"/> follows glibc's <c>__cmsg_nxthdr</c>, including its refusal to step past
/// the control length the kernel reported, so a malformed control buffer cannot make us read outside it.
/// </summary>
internal static unsafe class ControlMessage
{
    private const int AlignTo = 8; // sizeof(size_t)

    /// <summary>The most fds one message carries either way; vhost-user needs at most 8 (one per memory region).</summary>
    public const int MaxFds = 32;

    /// <summary>CMSG_SPACE(MaxFds * sizeof(int)): the control buffer for one full SCM_RIGHTS message.</summary>
    public const int MaxFdsSpace = 16 + MaxFds * sizeof(int); // 144, already a multiple of 8

    public static nuint Align(nuint length) => (length + AlignTo - 1) & ~(nuint)(AlignTo - 1);

    /// <summary>CMSG_SPACE: bytes a message with <paramref name="dataLength"/> payload bytes occupies in a control buffer.</summary>
    public static int Space(int dataLength) => (int)(Align((nuint)dataLength) + Align((nuint)sizeof(CMsgHdr)));

    /// <summary>CMSG_LEN: the value of <c>cmsg_len</c> for <paramref name="dataLength"/> payload bytes.</summary>
    public static int Len(int dataLength) => (int)Align((nuint)sizeof(CMsgHdr)) + dataLength;

    /// <summary>CMSG_DATA.</summary>
    public static byte* Data(CMsgHdr* header) => (byte*)header + Align((nuint)sizeof(CMsgHdr));

    /// <summary>CMSG_FIRSTHDR.</summary>
    public static CMsgHdr* FirstHeader(MsgHdr* message) =>
        message->ControlLength >= (nuint)sizeof(CMsgHdr) ? (CMsgHdr*)message->Control : null;

    /// <summary>CMSG_NXTHDR (glibc's __cmsg_nxthdr), with every length compared before any pointer is formed.</summary>
    public static CMsgHdr* NextHeader(MsgHdr* message, CMsgHdr* header)
    {
        var offset = (nuint)((byte*)header - (byte*)message->Control);
        if (offset > message->ControlLength)
            return null;
        var remaining = message->ControlLength - offset;
        // A zero or short length would loop forever; one past the buffer would step outside it.
        if (header->Length < (nuint)sizeof(CMsgHdr) || header->Length > remaining)
            return null;
        var step = Align(header->Length);
        if (step > remaining || remaining - step < (nuint)sizeof(CMsgHdr))
            return null;
        var next = (CMsgHdr*)((byte*)header + step);
        var left = remaining - step;
        if (next->Length > left || Align(next->Length) > left)
            return null;
        return next;
    }

    /// <summary>True when <paramref name="header"/>'s whole payload lies inside the control buffer.</summary>
    public static bool FitsInBuffer(MsgHdr* message, CMsgHdr* header)
    {
        var offset = (nuint)((byte*)header - (byte*)message->Control);
        return offset <= message->ControlLength
            && header->Length >= (nuint)sizeof(CMsgHdr)
            && header->Length <= message->ControlLength - offset;
    }
}
