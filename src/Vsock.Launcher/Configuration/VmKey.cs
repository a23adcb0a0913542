namespace Vsock.Launcher.Configuration;

/// <summary>The settings one VM's device accepts, whatever the source (flags, <c>--vm</c>, YAML).</summary>
internal enum VmKey
{
    GuestCid,
    Socket,
    UdsPath,
    ForwardCid,
    ForwardListen,
    TxBufferSize,
    QueueSize,
    Groups,
    MaxConnections,
    CloseTimeoutMs,
    ForwardListenSeqpacket,
}

/// <summary>How a source spells keys, so messages use the spelling the user would write there.</summary>
internal enum KeyStyle
{
    /// <summary>Top-level flags: <c>--guest-cid</c>.</summary>
    Flag,
    /// <summary><c>--vm guest-cid=...</c>.</summary>
    VmArgument,
    /// <summary>YAML <c>guest_cid:</c> (the reference's only spelling, so the one we name).</summary>
    Yaml,
}

internal static class VmKeys
{
    // Both spellings everywhere: the reference accepts both in --vm but only snake_case in YAML,
    // and its own README's YAML example uses forward-cid:, which the reference then ignores.
    private static readonly Dictionary<string, VmKey> BySpelling = new(StringComparer.Ordinal)
    {
        ["guest-cid"] = VmKey.GuestCid,
        ["guest_cid"] = VmKey.GuestCid,
        ["socket"] = VmKey.Socket,
        ["uds-path"] = VmKey.UdsPath,
        ["uds_path"] = VmKey.UdsPath,
        ["forward-cid"] = VmKey.ForwardCid,
        ["forward_cid"] = VmKey.ForwardCid,
        ["forward-listen"] = VmKey.ForwardListen,
        ["forward_listen"] = VmKey.ForwardListen,
        ["tx-buffer-size"] = VmKey.TxBufferSize,
        ["tx_buffer_size"] = VmKey.TxBufferSize,
        ["queue-size"] = VmKey.QueueSize,
        ["queue_size"] = VmKey.QueueSize,
        ["groups"] = VmKey.Groups,
        ["max-connections"] = VmKey.MaxConnections,
        ["max_connections"] = VmKey.MaxConnections,
        ["close-timeout-ms"] = VmKey.CloseTimeoutMs,
        ["close_timeout_ms"] = VmKey.CloseTimeoutMs,
        ["forward-listen-seqpacket"] = VmKey.ForwardListenSeqpacket,
        ["forward_listen_seqpacket"] = VmKey.ForwardListenSeqpacket,
    };

    public static readonly IReadOnlyList<VmKey> All = Enum.GetValues<VmKey>();

    public static bool TryParse(string spelling, out VmKey key) => BySpelling.TryGetValue(spelling, out key);

    public static string Name(VmKey key, KeyStyle style)
    {
        string hyphenated = key switch
        {
            VmKey.GuestCid => "guest-cid",
            VmKey.Socket => "socket",
            VmKey.UdsPath => "uds-path",
            VmKey.ForwardCid => "forward-cid",
            VmKey.ForwardListen => "forward-listen",
            VmKey.TxBufferSize => "tx-buffer-size",
            VmKey.QueueSize => "queue-size",
            VmKey.Groups => "groups",
            VmKey.MaxConnections => "max-connections",
            VmKey.CloseTimeoutMs => "close-timeout-ms",
            VmKey.ForwardListenSeqpacket => "forward-listen-seqpacket",
            _ => throw new ArgumentOutOfRangeException(nameof(key), key, null),
        };
        return style switch
        {
            KeyStyle.Flag => "--" + hyphenated,
            KeyStyle.Yaml => hyphenated.Replace('-', '_'),
            _ => hyphenated,
        };
    }

    /// <summary>"guest-cid, socket, ..." for an unknown-key message.</summary>
    public static string List(KeyStyle style) => string.Join(", ", All.Select(k => Name(k, style)));

    /// <summary>A hint for near misses the reference's own docs invite (its man page says <c>group</c>).</summary>
    public static string Suggestion(string unknown, KeyStyle style) => unknown switch
    {
        "group" => $" (did you mean {Name(VmKey.Groups, style)}?)",
        "cid" => $" (did you mean {Name(VmKey.GuestCid, style)}?)",
        _ => string.Empty,
    };
}
