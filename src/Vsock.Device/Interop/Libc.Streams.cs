namespace Vsock.Device.Interop;

// Flags of the stream data path (StreamIo), apart from Libc.Constants.cs so the two grow independently.
internal static partial class Libc
{
    internal const int MSG_PEEK = 0x2;
    internal const int MSG_TRUNC = 0x20;
    internal const int MSG_EOR = 0x80;
    internal const int SHUT_WR = 1;
    internal const int SOCK_SEQPACKET = 5;

    // SEQPACKET message I/O (MessageIo).
    internal const int SO_SNDBUF = 7;
    internal const short POLLRDHUP = 0x2000;
    /// <summary>FIONREAD == SIOCINQ: bytes queued for reading (unix SEQPACKET: in every queued message).</summary>
    internal const nuint FIONREAD = 0x541B;
    /// <summary>Socket option level and name of a vsock socket's buffer size (linux/vm_sockets.h: level AF_VSOCK).</summary>
    internal const int SO_VM_SOCKETS_BUFFER_SIZE = 0;
}
