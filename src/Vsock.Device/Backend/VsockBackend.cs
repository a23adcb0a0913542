using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Diagnostics;
using Vsock.Device.Interop;
using Vsock.Device.Memory;
using Vsock.Device.VhostUser;
using Vsock.Device.Virtio;

namespace Vsock.Device.Backend;

/// <summary>
/// The virtio-vsock device behind one vhost-user session (the reference's vhu_vsock.rs plus the
/// ring-walking half of vhu_vsock_thread.rs): offers features and config space, owns the RX and TX
/// split queues and their call eventfds, and lends the rings for one turn at a time: <see cref="TryBeginTx"/>
/// yields the guest's TX packets, <see cref="TryBeginRx"/> takes RX buffers for packets to the guest. It holds
/// no packets of its own: what waits for the guest waits in the streams (their RX ops) or in the host sockets.
///
/// Not thread-safe by design: exactly one owner (the VM's device actor, on its event-loop thread) calls it,
/// both for vhost-user requests (through <see cref="VhostUserSession"/>) and for draining rings, so
/// guest memory and ring state are only ever touched from that thread.
/// </summary>
public sealed class VsockBackend : IVhostUserBackend, IDisposable
{
    public const int RxQueueIndex = 0;
    public const int TxQueueIndex = 1;
    public const int EventQueueIndex = 2;

    private const ulong OfferedFeatures =
        (1UL << VirtioFeatures.VsockSeqpacket) |
        (1UL << VirtioFeatures.Version1) |
        (1UL << VirtioFeatures.RingEventIdx) |
        (1UL << VirtioFeatures.NotifyOnEmpty) |
        (1UL << VirtioFeatures.RingIndirectDesc) |
        (1UL << VirtioFeatures.ProtocolFeatures);

    private readonly IVsockDeviceEvents _events;
    private readonly DeviceLog _log;
    private readonly DeviceCounters _counters;
    private readonly byte[] _config = new byte[8];
    private readonly SplitQueue?[] _queues = new SplitQueue?[3];
    private readonly VringConfig?[] _configs = new VringConfig?[3];
    private readonly EventFd?[] _callFds = new EventFd?[3];
    private readonly SafeFileHandle?[] _kickFds = new SafeFileHandle?[3];
    private readonly bool[] _paused = new bool[3];
    private readonly bool[] _brokenReported = new bool[3];
    private readonly RxScratch _rxScratch = new();
    private readonly TxScratch _txScratch = new();
    private GuestMemory _memory = GuestMemory.Empty;

    public VsockBackend(ulong guestCid, int maxQueueSize, IVsockDeviceEvents events, DeviceLog? log = null, DeviceCounters? counters = null)
    {
        GuestCid = guestCid;
        MaxQueueSize = maxQueueSize;
        _events = events;
        _log = log ?? DeviceLog.Null;
        _counters = counters ?? new DeviceCounters();
        BinaryPrimitives.WriteUInt64LittleEndian(_config, guestCid);
    }

    public ulong GuestCid { get; }
    public ulong Features => OfferedFeatures;
    /// <summary>
    /// Everything the session implements: MQ, CONFIG (QEMU's vhost-user-vsock requires it), REPLY_ACK,
    /// RESET_DEVICE, CONFIGURE_MEM_SLOTS (ADD/REM_MEM_REG) and STATUS.
    /// </summary>
    public ulong ProtocolFeatures { get; init; } = VhostUserSession.SupportedProtocolFeatures;
    public int QueueCount => 3;
    public int MaxQueueSize { get; }
    public ReadOnlySpan<byte> ConfigSpace => _config;
    public ulong AckedFeatures { get; private set; }

    /// <summary>Both data rings run: the guest driver is up and packets can flow.</summary>
    public bool IsRunning =>
        _queues[RxQueueIndex] is not null && _queues[TxQueueIndex] is not null && !_paused[RxQueueIndex] && !_paused[TxQueueIndex];

    public GuestMemory Memory => _memory;

    public void FeaturesAcked(ulong features) => AckedFeatures = features;

    /// <summary>
    /// The driver accepted VIRTIO_VSOCK_F_SEQPACKET: its SEQPACKET packets are served. A driver that did not gets
    /// an RST for them, as for any type it does not know.
    /// </summary>
    public bool SeqpacketNegotiated => (AckedFeatures & (1UL << VirtioFeatures.VsockSeqpacket)) != 0;

    public void MemoryChanged(GuestMemory memory)
    {
        _memory = memory;
        // A running ring keeps its addresses and indices but must read through the new mapping.
        for (var i = 0; i < _queues.Length; i++)
        {
            if (_queues[i] is { } q && _configs[i] is { } c)
                _queues[i] = CreateQueue(c with { NextAvail = q.NextAvail });
        }
    }

    public void RingStarted(int index, VringConfig config)
    {
        ReleaseKick(index);
        _kickFds[index] = config.KickFd;
        _configs[index] = config;
        _paused[index] = false;
        if (index == EventQueueIndex)
        {
            // QEMU keeps the event queue; another VMM may hand it to us. We never post events
            // (no TRANSPORT_RESET without migration support), so the ring is left untouched.
            return;
        }
        _queues[index] = CreateQueue(config);
        _brokenReported[index] = false;
        _events.RingReady(index, config.KickFd);
        _log.Debug($"ring {index} started: size {config.Size} next_avail {config.NextAvail} event_idx {config.EventIdx}");
    }

    private SplitQueue CreateQueue(VringConfig c) =>
        new(_memory, c.Size, c.DescTableGpa, c.AvailRingGpa, c.UsedRingGpa, c.EventIdx, c.IndirectDescriptors, c.NextAvail)
        {
            NotifyOnEmpty = c.NotifyOnEmpty,
        };

    public ushort RingStopped(int index)
    {
        var q = _queues[index];
        var next = q?.NextAvail ?? _configs[index]?.NextAvail ?? 0;
        if (q is not null && !_paused[index])
            _events.RingStopped(index);
        _queues[index] = null;
        _configs[index] = null;
        _paused[index] = false;
        ReleaseKick(index);
        return next;
    }

    public void RingEnabledChanged(int index, bool enabled)
    {
        if (_queues[index] is null || _paused[index] == !enabled)
            return;
        // Started but disabled: no side effects on the guest. The ring keeps its position; we only
        // stop watching kicks and draining it until it is enabled again.
        _paused[index] = !enabled;
        if (enabled)
            _events.RingReady(index, _kickFds[index]);
        else
            _events.RingStopped(index);
    }

    public void CallFdChanged(int index, SafeFileHandle? callFd)
    {
        _callFds[index]?.Dispose();
        _callFds[index] = callFd is null ? null : EventFd.FromHandle(callFd);
    }

    public void Reset()
    {
        for (var i = 0; i < _queues.Length; i++)
        {
            if (_queues[i] is not null && !_paused[i])
                _events.RingStopped(i);
            _queues[i] = null;
            _configs[i] = null;
            _paused[i] = false;
            ReleaseKick(i);
            _callFds[i]?.Dispose();
            _callFds[i] = null;
        }
        _events.DeviceReset();
    }

    private void ReleaseKick(int index)
    {
        _kickFds[index]?.Dispose();
        _kickFds[index] = null;
    }

    /// <summary>
    /// Lends the RX ring for one turn (see <see cref="RxTurn"/>); false while the ring is not running. The
    /// caller must call <see cref="RxTurn.Complete"/> before its turn ends.
    /// </summary>
    public bool TryBeginRx(out RxTurn turn)
    {
        var rx = _queues[RxQueueIndex];
        if (rx is null || _paused[RxQueueIndex] || BrokenRing(rx, RxQueueIndex))
        {
            turn = default;
            return false;
        }
        _counters.RxTurns++;
        turn = new RxTurn(rx, _memory, _rxScratch, _callFds[RxQueueIndex], _log, _counters);
        return true;
    }

    /// <summary>
    /// Lends the TX ring for one turn of at most <paramref name="budget"/> chains (see <see cref="TxTurn"/>); false
    /// while the ring is not running. The caller must call <see cref="TxTurn.Complete"/> before its turn ends.
    /// With <paramref name="armWhenEmpty"/> false, kicks stay suppressed when the ring runs dry (the caller polls
    /// the ring and re-arms with <see cref="ArmTxNotification"/> before it sleeps).
    /// </summary>
    public bool TryBeginTx(int budget, out TxTurn turn, bool armWhenEmpty = true)
    {
        var tx = _queues[TxQueueIndex];
        if (tx is null || _paused[TxQueueIndex] || BrokenRing(tx, TxQueueIndex))
        {
            turn = default;
            return false;
        }
        _counters.TxTurns++;
        turn = new TxTurn(tx, _memory, _txScratch, _callFds[TxQueueIndex], _log, _counters, budget, armWhenEmpty);
        return true;
    }

    /// <summary>
    /// Chains the guest has made available on ring <paramref name="index"/> that were not taken yet (a fresh
    /// read of avail.idx; 0 for a ring that is not running or broken). For polling while the loop spins.
    /// </summary>
    public int Pending(int index) =>
        _queues[index] is { IsBroken: false } q && !_paused[index] ? q.PendingCount() : 0;

    /// <summary>
    /// Re-arms TX kicks (EVENT_IDX: avail_event = next avail) and returns true if chains arrived meanwhile, which
    /// the guest may not kick for: the caller drains them instead of sleeping.
    /// </summary>
    public bool ArmTxNotification() =>
        _queues[TxQueueIndex] is { IsBroken: false } q && !_paused[TxQueueIndex] && q.EnableNotification();

    /// <summary>A corrupt ring is logged once per driver reset, not on every kick (a guest could flood the log).</summary>
    private bool BrokenRing(SplitQueue queue, int index)
    {
        if (!queue.IsBroken)
            return false;
        if (!_brokenReported[index])
        {
            _brokenReported[index] = true;
            _log.Warning($"{(index == RxQueueIndex ? "RX" : "TX")} ring is corrupt (avail index ran more than the ring size ahead); ignoring it until the driver resets");
        }
        return true;
    }

    public void Dispose()
    {
        for (var i = 0; i < _callFds.Length; i++)
        {
            _callFds[i]?.Dispose();
            _callFds[i] = null;
            ReleaseKick(i);
        }
        Array.Clear(_queues);
        _memory = GuestMemory.Empty; // the session owns and disposes the memory table
    }
}
