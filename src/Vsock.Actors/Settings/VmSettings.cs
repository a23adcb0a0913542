namespace Vsock.Actors.Settings;

/// <summary>
/// One VM's device, as the command line (<c>--guest-cid ...</c> or <c>--vm k=v,...</c>) or the YAML
/// file (<c>vms:</c>) describes it. Exactly one backend: <see cref="UdsPath"/> (unix sockets) or
/// <see cref="ForwardCid"/> (host AF_VSOCK). Validated by the launcher before the actor system starts.
/// </summary>
public sealed record VmSettings
{
    public const ulong DefaultGuestCid = 3;
    public const uint DefaultTxBufferSize = 64 * 1024;
    public const int DefaultQueueSize = 1024;
    public const string DefaultGroup = "default";

    /// <summary>
    /// Connections one VM may hold at once (<see cref="MaxConnections"/>). 4096 is four times the fixed cap
    /// Firecracker and Cloud Hypervisor have shipped with (1023), far above what a guest's services use, so
    /// normal use never meets it; what it bounds is what one guest can take from the process shared by every
    /// VM: 4096 host fds and at most 4096 TX buffers (256 MiB at the default tx-buffer-size).
    /// </summary>
    public const int DefaultMaxConnections = 4096;

    /// <summary>
    /// How long the guest has to close a stream whose host side is closed (<see cref="CloseTimeout"/>): 8 s,
    /// Linux's own VSOCK_CLOSE_TIMEOUT, which a Linux peer gives the other end in the same situation.
    /// </summary>
    public static readonly TimeSpan DefaultCloseTimeout = TimeSpan.FromSeconds(8);

    public ulong GuestCid { get; init; } = DefaultGuestCid;
    /// <summary>The vhost-user socket the daemon listens on for the VMM.</summary>
    public required string Socket { get; init; }
    public string? UdsPath { get; init; }
    public uint? ForwardCid { get; init; }
    public IReadOnlyList<uint> ForwardListen { get; init; } = [];
    /// <summary>Host AF_VSOCK ports listened on with SOCK_SEQPACKET and forwarded to the guest's SEQPACKET listeners.</summary>
    public IReadOnlyList<uint> ForwardListenSeqpacket { get; init; } = [];
    public uint TxBufferSize { get; init; } = DefaultTxBufferSize;
    public int QueueSize { get; init; } = DefaultQueueSize;
    public IReadOnlyList<string> Groups { get; init; } = [DefaultGroup];

    /// <summary>
    /// Streams (host and sibling) plus host clients still sending their CONNECT line, at most, for this VM.
    /// Beyond it a guest REQUEST gets an RST and a new host client is closed at once.
    /// </summary>
    public int MaxConnections { get; init; } = DefaultMaxConnections;

    /// <summary>
    /// Once a stream's host side is over (the host socket hung up both ways and the guest was sent all the data
    /// and the EOF), the guest must close the stream within this time, or the device resets it. Zero: wait for
    /// ever (the reference's behaviour).
    /// </summary>
    public TimeSpan CloseTimeout { get; init; } = DefaultCloseTimeout;

    public override string ToString() =>
        $"cid {GuestCid} socket {Socket} " + (UdsPath is not null ? $"uds-path {UdsPath}" : $"forward-cid {ForwardCid}") +
        $" groups {string.Join('+', Groups)}";
}
