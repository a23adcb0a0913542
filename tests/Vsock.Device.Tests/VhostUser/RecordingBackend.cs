using Microsoft.Win32.SafeHandles;
using Vsock.Device.Memory;
using Vsock.Device.VhostUser;

namespace Vsock.Device.Tests.VhostUser;

/// <summary>
/// Records what the session asks of the device and owns the fds it is given, like the real backend.
/// Calls that break the session's contract (starting a running ring, stopping a stopped one) throw
/// InvalidOperationException, which no test expects.
/// </summary>
internal sealed class RecordingBackend : IVhostUserBackend
{
    /// <summary>rust-vmm vhost-device-vsock's offer: VERSION_1 | NOTIFY_ON_EMPTY | EVENT_IDX | PROTOCOL_FEATURES.</summary>
    public const ulong VsockFeatures = 0x1_6100_0000;

    private readonly byte[] _config = BitConverter.GetBytes(3UL);

    public ulong Features { get; set; } = VsockFeatures;
    public ulong ProtocolFeatures { get; set; } = VhostUserSession.SupportedProtocolFeatures;
    public int QueueCount { get; set; } = 3;
    public int MaxQueueSize { get; set; } = 1024;
    public ReadOnlySpan<byte> ConfigSpace => _config;

    public List<string> Calls { get; } = [];
    public ulong? AckedFeatures { get; private set; }
    public GuestMemory? Memory { get; private set; }
    public Dictionary<int, VringConfig> Running { get; } = [];
    public Dictionary<int, SafeFileHandle?> CallFds { get; } = [];
    public List<VringConfig> Starts { get; } = [];

    /// <summary>What RingStopped answers: by default the start index plus 7, as if 7 buffers were processed.</summary>
    public Func<VringConfig, ushort> NextAvailOnStop { get; set; } = c => (ushort)(c.NextAvail + 7);

    public void FeaturesAcked(ulong features)
    {
        Calls.Add($"FeaturesAcked 0x{features:x}");
        AckedFeatures = features;
    }

    public void MemoryChanged(GuestMemory memory)
    {
        Calls.Add($"MemoryChanged {memory.Regions.Count}");
        Memory = memory;
    }

    public void RingStarted(int index, VringConfig config)
    {
        Calls.Add($"RingStarted {index}");
        if (Running.ContainsKey(index))
            throw new InvalidOperationException($"ring {index} started twice");
        if (Memory is null || Memory.Regions.Count == 0)
            throw new InvalidOperationException($"ring {index} started without memory");
        if (config.Index != index || config.Size == 0 || (config.Size & (config.Size - 1)) != 0)
            throw new InvalidOperationException($"bad ring config {config}");
        Running[index] = config;
        Starts.Add(config);
    }

    public ushort RingStopped(int index)
    {
        Calls.Add($"RingStopped {index}");
        if (!Running.Remove(index, out var config))
            throw new InvalidOperationException($"ring {index} stopped while not running");
        config.KickFd?.Dispose();
        return NextAvailOnStop(config);
    }

    public void CallFdChanged(int index, SafeFileHandle? callFd)
    {
        Calls.Add($"CallFdChanged {index} {(callFd is null ? "none" : "fd")}");
        if (CallFds.TryGetValue(index, out var old))
            old?.Dispose();
        CallFds[index] = callFd;
    }

    public void RingEnabledChanged(int index, bool enabled)
    {
        Calls.Add($"RingEnabledChanged {index} {enabled}");
        if (!Running.ContainsKey(index))
            throw new InvalidOperationException($"ring {index} enable changed while not running");
    }

    public void Reset()
    {
        Calls.Add("Reset");
        foreach (var config in Running.Values)
            config.KickFd?.Dispose();
        Running.Clear();
        foreach (var fd in CallFds.Values)
            fd?.Dispose();
        CallFds.Clear();
    }
}
