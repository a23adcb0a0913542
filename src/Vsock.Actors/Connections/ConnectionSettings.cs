using Vsock.Device.Diagnostics;
using Vsock.Device.Threading;

namespace Vsock.Actors.Connections;

/// <summary>
/// What every connection actor of one VM needs, fixed when the device starts. <see cref="Loop"/> is the VM's
/// event loop: the connection's dispatcher runs on it, and its host socket is registered with it.
/// </summary>
public sealed record ConnectionSettings(ulong GuestCid, uint TxBufferSize, string? UdsPath, uint? ForwardCid, EventLoop Loop)
{
    /// <summary>How long a host client may take to send its CONNECT line.</summary>
    public TimeSpan ConnectLineTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long we wait for the guest to answer a REQUEST. Linux answers at once (RESPONSE or RST); silence means
    /// the driver is gone, and the host client is closed rather than left hanging (the reference waits forever).
    /// </summary>
    public TimeSpan GuestResponseTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a guest-initiated connect may take before the REQUEST is reset: to a host AF_VSOCK port, or to a unix
    /// listener whose accept backlog is full. 2 s is Linux's own connect timeout (VSOCK_DEFAULT_CONNECT_TIMEOUT): the
    /// guest has given up by then anyway.
    /// </summary>
    public TimeSpan HostConnectTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long the guest has to close a stream whose host side is over (<see cref="Settings.VmSettings.CloseTimeout"/>;
    /// the rule is in <see cref="ConnectionActor"/>). Zero: no limit.
    /// </summary>
    public TimeSpan CloseTimeout { get; init; } = Settings.VmSettings.DefaultCloseTimeout;

    /// <summary>The VM's rate-limited log, for what a guest can provoke (used on the VM's loop thread, as the actors are).</summary>
    public DeviceLog Log { get; init; } = DeviceLog.Null;
}
