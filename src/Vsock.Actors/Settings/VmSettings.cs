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

    public override string ToString() =>
        $"cid {GuestCid} socket {Socket} " + (UdsPath is not null ? $"uds-path {UdsPath}" : $"forward-cid {ForwardCid}") +
        $" groups {string.Join('+', Groups)}";
}
