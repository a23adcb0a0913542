namespace Vsock.Device.Interop;

/// <summary>
/// The connection-oriented socket types a vsock stream maps to on the host: a byte stream (SOCK_STREAM, the vsock
/// STREAM type) or a sequence of messages (SOCK_SEQPACKET, the vsock SEQPACKET type). Unix and AF_VSOCK sockets of
/// the two types do not mix: a connect to a listener of the other type fails (EPROTOTYPE for unix, ECONNRESET for
/// AF_VSOCK).
/// </summary>
public enum SocketKind
{
    Stream,
    Seqpacket,
}

internal static class SocketKinds
{
    /// <summary>The socket(2) type for <paramref name="kind"/>.</summary>
    public static int SocketType(this SocketKind kind) => kind == SocketKind.Seqpacket ? Libc.SOCK_SEQPACKET : Libc.SOCK_STREAM;
}
