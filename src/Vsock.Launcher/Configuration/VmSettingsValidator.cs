using System.Text;
using Vsock.Actors.Settings;

namespace Vsock.Launcher.Configuration;

/// <summary>
/// The rules a device's settings must satisfy. The reference validates none of these values (its
/// quirk list §10 #16); we refuse them up front with a message, rather than failing later inside
/// the VMM handshake or the guest.
/// </summary>
internal static class VmSettingsValidator
{
    /// <summary>
    /// Each host↔guest connection owns a TX buffer of this size, so it bounds memory per connection;
    /// 64 MiB is 256 times the Linux guest's default vsock buffer (256 KiB), far more than credit
    /// flow control can use, and keeps buf_alloc well inside the u32 window where the wrapping
    /// credit arithmetic (buf_alloc - (tx_cnt - fwd_cnt)) stays unambiguous.
    /// </summary>
    public const uint MaxTxBufferSize = 64 * 1024 * 1024;

    /// <summary>Split virtqueues hold at most 32768 descriptors (virtio 1.2 §2.7); crosvm asks up to that, QEMU 1024.</summary>
    public const ulong MaxQueueSize = 32768;

    /// <summary>
    /// Each connection holds a host fd, and no process can hold more than the kernel's default
    /// <c>fs.nr_open</c> (1048576), so a larger per-VM limit could never be reached.
    /// </summary>
    public const ulong MaxMaxConnections = 1024 * 1024;

    /// <summary>An hour: a stream nobody can use any more is not worth keeping longer.</summary>
    public const ulong MaxCloseTimeoutMs = 3_600_000;

    /// <summary><c>sockaddr_un.sun_path</c> is 108 bytes including the terminating NUL.</summary>
    public const int MaxUnixSocketPathBytes = 107;

    private const ulong U32Max = uint.MaxValue;

    public static string? GuestCidProblem(ulong cid)
    {
        if (cid <= 2 || cid == U32Max)
        {
            return $"guest CID {cid} is reserved (0, 1, 2 and 4294967295 cannot be used)";
        }

        return cid > U32Max
            ? $"guest CID {cid} is reserved (virtio-vsock keeps the upper 32 bits of a CID zero, so at most 4294967294)"
            : null;
    }

    public static string? ForwardCidProblem(ulong cid) => cid switch
    {
        > U32Max => $"forward CID {cid} does not fit in 32 bits",
        U32Max => "forward CID 4294967295 is VMADDR_CID_ANY, not an address to connect to",
        _ => null,
    };

    public static string? PortProblem(ulong port) => port switch
    {
        > U32Max => $"port {port} does not fit in 32 bits",
        U32Max => "port 4294967295 is VMADDR_PORT_ANY, not a port to listen on",
        _ => null,
    };

    public static string? TxBufferSizeProblem(ulong size) => size switch
    {
        0 => "tx buffer size 0 is too small (at least 1 byte)",
        > MaxTxBufferSize => $"tx buffer size {size} is larger than {MaxTxBufferSize} (64 MiB)",
        _ => null,
    };

    public static string? QueueSizeProblem(ulong size) =>
        size is 0 or > MaxQueueSize || (size & (size - 1)) != 0
            ? $"queue size {size} must be a power of two from 1 to {MaxQueueSize}"
            : null;

    public static string? MaxConnectionsProblem(ulong count) => count switch
    {
        0 => "max connections 0 would refuse every connection (at least 1)",
        > MaxMaxConnections => $"max connections {count} is more than {MaxMaxConnections} (no process can hold more file descriptors)",
        _ => null,
    };

    public static string? CloseTimeoutProblem(ulong ms) =>
        ms > MaxCloseTimeoutMs ? $"close timeout {ms} ms is more than {MaxCloseTimeoutMs} (one hour)" : null;

    public static string? SocketPathProblem(string path)
    {
        if (path.Length == 0)
        {
            return "empty path";
        }

        if (path.Contains('\0'))
        {
            return "path contains a NUL character";
        }

        int bytes = Encoding.UTF8.GetByteCount(path);
        return bytes > MaxUnixSocketPathBytes
            ? $"path '{path}' is {bytes} bytes long; a unix socket path can have at most {MaxUnixSocketPathBytes}"
            : null;
    }

    /// <summary>
    /// Rules across devices: each guest CID once (the reference rejects it only when the second
    /// device starts), each socket file once whichever role it plays, and each host listening
    /// port once (the vsock backend binds every forward-listen port on the host).
    /// </summary>
    public static void CheckDistinct(IReadOnlyList<(VmSettings Settings, RawVm Source)> vms)
    {
        var cids = new Dictionary<ulong, RawVm>();
        var paths = new Dictionary<string, (RawVm Vm, VmKey Key)>(StringComparer.Ordinal);
        var ports = new Dictionary<uint, RawVm>();
        foreach ((VmSettings settings, RawVm source) in vms)
        {
            if (!cids.TryAdd(settings.GuestCid, source))
            {
                throw source.Error($"guest CID {settings.GuestCid} is already used by {cids[settings.GuestCid].Label}");
            }

            CheckPath(paths, source, VmKey.Socket, settings.Socket);
            if (settings.UdsPath is not null)
            {
                CheckPath(paths, source, VmKey.UdsPath, settings.UdsPath);
            }

            // STREAM and SEQPACKET share the host's vsock port numbers: a port is bound once, whatever its type.
            foreach ((VmKey key, uint port) in settings.ForwardListen.Select(p => (VmKey.ForwardListen, p))
                         .Concat(settings.ForwardListenSeqpacket.Select(p => (VmKey.ForwardListenSeqpacket, p))))
            {
                if (!ports.TryAdd(port, source))
                {
                    string owner = ReferenceEquals(ports[port], source) ? "this VM" : ports[port].Label;
                    throw source.Error(
                        $"{source.Name(key)} port {port} is already used by {owner} " +
                        "(both would listen on it on the host)");
                }
            }
        }
    }

    private static void CheckPath(Dictionary<string, (RawVm Vm, VmKey Key)> paths, RawVm source, VmKey key, string path)
    {
        // Compare absolute forms: "/tmp/a" and "/tmp/./a" are one file.
        string full = Path.GetFullPath(path);
        if (paths.TryGetValue(full, out (RawVm Vm, VmKey Key) first))
        {
            string owner = ReferenceEquals(first.Vm, source) ? "this VM" : first.Vm.Label;
            throw source.Error($"{source.Name(key)} {path} is already used as the {source.Name(first.Key)} of {owner}");
        }

        paths.Add(full, (source, key));
    }
}
