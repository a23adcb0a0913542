namespace Vsock.Device.Interop;

// Flags of the stream data path (StreamIo), apart from Libc.Constants.cs so the two grow independently.
internal static partial class Libc
{
    internal const int MSG_PEEK = 0x2;
    internal const int MSG_TRUNC = 0x20;
    internal const int MSG_EOR = 0x80;
    internal const int SHUT_WR = 1;
    internal const int SOCK_SEQPACKET = 5;
}
