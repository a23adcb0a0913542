namespace Vsock.Device.Connections;

/// <summary>
/// The control packets a stream owes the guest (the reference's rxops.rs/rxqueue.rs): at most one of each
/// kind is pending, so a burst of causes (ten CREDIT_REQUESTs) costs one packet. Data ("the host socket
/// has bytes and the guest has credit") is not an op: it is the stream's state, read when the guest has
/// RX buffers. The order in which a stream sends them is in <see cref="VsockStream.FillRx"/>.
/// </summary>
[Flags]
public enum RxOps : byte
{
    None = 0,
    Request = 1 << 0,
    Response = 1 << 1,
    CreditUpdate = 1 << 2,
    CreditRequest = 1 << 3,
    Shutdown = 1 << 4,
    Rst = 1 << 5,
}

/// <summary>What a stream did with its turn at the RX ring (<see cref="VsockStream.FillRx"/>).</summary>
public enum RxFill
{
    /// <summary>Nothing more to send until something changes (host data, credit, a new op).</summary>
    Idle,
    /// <summary>Its share of the turn is used and it still has something: back of the queue.</summary>
    More,
    /// <summary>The guest has no RX buffer left; the stream keeps its place at the front.</summary>
    OutOfBuffers,
}
