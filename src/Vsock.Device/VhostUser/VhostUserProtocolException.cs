namespace Vsock.Device.VhostUser;

/// <summary>Why a VMM's message was refused. A closed set, so callers and tests can tell the cases apart.</summary>
public enum VhostUserError
{
    // Broken framing or a request this backend cannot serve: the session ends.

    /// <summary>Header with a wrong version, the REPLY bit, reserved flag bits or an oversized payload.</summary>
    BadHeader,
    /// <summary>The connection ended inside a message.</summary>
    TruncatedMessage,
    /// <summary>More than <see cref="VhostUserCodec.MaxFds"/> fds arrived with one message.</summary>
    TooManyFds,
    /// <summary>A request we do not implement, or one that needs a protocol feature that was not negotiated.</summary>
    UnsupportedRequest,
    /// <summary>The payload size does not match the request's layout.</summary>
    BadPayloadSize,
    /// <summary>The number of attached fds does not match what the request carries.</summary>
    BadFdCount,
    /// <summary>A payload field with reserved bits set or an impossible count.</summary>
    BadPayload,
    /// <summary>The VMM does not read its replies: more are waiting than <see cref="VhostUserReplyQueue"/> holds.</summary>
    RepliesNotRead,

    // Well-formed requests with a value we refuse. With REPLY_ACK and NEED_REPLY the session answers
    // 1 and carries on (nothing changed); otherwise it cannot tell the VMM, and the session ends.

    /// <summary>A ring index at or beyond the backend's queue count.</summary>
    BadRingIndex,
    /// <summary>A ring size, base or enable value out of range, or a running ring reconfigured.</summary>
    BadRingConfig,
    /// <summary>Ring addresses outside the memory table or misaligned.</summary>
    BadRingAddress,
    /// <summary>Feature bits the backend did not offer.</summary>
    BadFeatures,
    /// <summary>A memory region that is empty, wraps, overlaps another, is unknown, or exceeds the slot limit.</summary>
    BadMemoryRegion,
    /// <summary>The region's fd could not be mapped.</summary>
    MemoryMapFailed,
    /// <summary>A request not allowed in the session's current state.</summary>
    NotAllowed,
}

/// <summary>
/// Malformed or refused input from the VMM: never a bug of ours. The caller disconnects that VMM only
/// (other VMs are unaffected) and logs <see cref="Exception.Message"/>, which names the request.
/// </summary>
public sealed class VhostUserProtocolException(VhostUserError error, string message) : Exception(message)
{
    public VhostUserError Error { get; } = error;

    /// <summary>A refusal of a well-formed request, which REPLY_ACK can report without ending the session.</summary>
    public bool IsRejection => Error >= VhostUserError.BadRingIndex;
}
