namespace Vsock.Testing;

/// <summary>The peer answered a connect with RST (Linux: ECONNRESET from connect on a vsock).</summary>
public sealed class GuestConnectionRefusedException(ulong cid, uint port)
    : IOException($"connection to {cid}:{port} refused (RST)")
{
    public ulong Cid { get; } = cid;
    public uint Port { get; } = port;
}

/// <summary>A SEQPACKET message larger than the peer's whole buffer (Linux: EMSGSIZE; nothing is sent).</summary>
public sealed class GuestMessageTooLargeException(int length, uint peerBufAlloc)
    : IOException($"a message of {length} bytes exceeds the peer's buffer of {peerBufAlloc} bytes (EMSGSIZE)")
{
}

/// <summary>A write on a stream the peer reset, shut down for receiving, or we shut down for sending (Linux: EPIPE).</summary>
public sealed class GuestStreamClosedException(string message) : IOException(message)
{
}
