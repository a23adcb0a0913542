using Vsock.Device.Threading;

namespace Vsock.Actors.Connections;

/// <summary>Per-VM constants every connection of that VM needs.</summary>
public sealed record ConnectionOptions(ulong GuestCid, uint TxBufferSize, string? UdsPath, uint? ForwardCid = null)
{
    /// <summary>
    /// The event loop that reports the host sockets' readiness: the device's own (set by the device,
    /// whose connections run on the same loop thread).
    /// </summary>
    public EventLoop? Loop { get; init; }

    /// <summary>How long a host client may take to send its CONNECT line.</summary>
    public TimeSpan ConnectLineTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long we wait for the guest to answer a REQUEST. Linux answers at once (RESPONSE or RST);
    /// silence means the driver is gone, and the host client is closed rather than left hanging
    /// (the reference waits forever).
    /// </summary>
    public TimeSpan GuestResponseTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Data packets (of up to 64 KiB each) a connection may have queued toward the guest at once.</summary>
    public int MaxRxInFlight { get; init; } = 4;
}
