namespace Vsock.Device.Connections;

/// <summary>
/// A stream's state bits (as Akka.IO's <c>TcpConnection.ConnectionStatus</c>), tested with
/// <see cref="VsockStream.Has"/>: plain bit operations, no <c>Enum.HasFlag</c> on the data path.
/// </summary>
[Flags]
public enum StreamStatus : ushort
{
    None = 0,
    /// <summary>The stream has its key and a place in the device's stream table.</summary>
    Open = 1 << 0,
    /// <summary>REQUEST and RESPONSE were exchanged: data may flow.</summary>
    Established = 1 << 1,
    /// <summary>The host socket may have data or EOF: set by readiness, cleared by a short read or EAGAIN.</summary>
    HostReadable = 1 << 2,
    /// <summary>The host socket may take bytes: set by readiness, cleared by a short write or EAGAIN.</summary>
    HostWritable = 1 << 3,
    /// <summary>The host peer hung up (EPOLLRDHUP/HUP): read until EOF whatever the read sizes.</summary>
    HostClosing = 1 << 4,
    /// <summary>A read returned end of stream: the guest is told SHUTDOWN(SEND), nothing more is read.</summary>
    HostEof = 1 << 5,
    /// <summary>The host socket's write side is shut (after the guest's SHUTDOWN(SEND) and a drained TX buffer).</summary>
    HostWriteShut = 1 << 6,
    /// <summary>The guest said SHUTDOWN(SEND): any more data from it is a protocol violation.</summary>
    GuestSendShut = 1 << 7,
    /// <summary>The guest said SHUTDOWN(RCV): nothing more goes to it.</summary>
    GuestReceiveShut = 1 << 8,
    /// <summary>A CREDIT_REQUEST went out; the guest's next packet (its update) clears it.</summary>
    CreditRequested = 1 << 9,
    /// <summary>In the device's queue of streams with something for the guest.</summary>
    RxQueued = 1 << 10,
    /// <summary>Over: its last packet (RST) went out, or the guest reset it. The device drops it from its table.</summary>
    Finished = 1 << 11,
    /// <summary>The guest sent CREDIT_REQUEST: the CREDIT_UPDATE owed is its answer and goes out even if it tells nothing new.</summary>
    CreditUpdateAsked = 1 << 12,
    /// <summary>Host data waited for the guest's credit (counted once per stall); the guest's next packet clears it.</summary>
    CreditStalled = 1 << 13,
}
