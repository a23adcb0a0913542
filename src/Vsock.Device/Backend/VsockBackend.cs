using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Interop;
using Vsock.Device.Memory;
using Vsock.Device.Packets;
using Vsock.Device.VhostUser;
using Vsock.Device.Virtio;

namespace Vsock.Device.Backend;

/// <summary>
/// The virtio-vsock device behind one vhost-user session (the reference's vhu_vsock.rs plus the
/// ring-walking half of vhu_vsock_thread.rs): offers features and config space, owns the RX and TX
/// split queues and their call eventfds, turns TX chains into packets for an <see cref="ITxPacketHandler"/>
/// and fills RX chains from a FIFO of <see cref="OutboundPacket"/>s.
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
        (1UL << VirtioFeatures.Version1) |
        (1UL << VirtioFeatures.RingEventIdx) |
        (1UL << VirtioFeatures.NotifyOnEmpty) |
        (1UL << VirtioFeatures.RingIndirectDesc) |
        (1UL << VirtioFeatures.ProtocolFeatures);

    private readonly IVsockDeviceEvents _events;
    private readonly IDeviceLog _log;
    private readonly byte[] _config = new byte[8];
    private readonly SplitQueue?[] _queues = new SplitQueue?[3];
    private readonly VringConfig?[] _configs = new VringConfig?[3];
    private readonly EventFd?[] _callFds = new EventFd?[3];
    private readonly SafeFileHandle?[] _kickFds = new SafeFileHandle?[3];
    private readonly bool[] _paused = new bool[3];
    private readonly Queue<OutboundPacket> _outbound = new();
    private int _headSent;
    private GuestMemory _memory = GuestMemory.Empty;

    public VsockBackend(ulong guestCid, int maxQueueSize, IVsockDeviceEvents events, IDeviceLog? log = null)
    {
        GuestCid = guestCid;
        MaxQueueSize = maxQueueSize;
        _events = events;
        _log = log ?? NullDeviceLog.Instance;
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

    public int OutboundCount => _outbound.Count;

    public GuestMemory Memory => _memory;

    public void FeaturesAcked(ulong features) => AckedFeatures = features;

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
        if (index == RxQueueIndex)
            DropOutbound();
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
        DropOutbound();
        _events.DeviceReset();
    }

    private void ReleaseKick(int index)
    {
        _kickFds[index]?.Dispose();
        _kickFds[index] = null;
    }

    /// <summary>Queues a packet for the guest. Call <see cref="DrainRx"/> to move it into RX buffers.</summary>
    public void Enqueue(in OutboundPacket packet) => _outbound.Enqueue(packet);

    public enum RxResult
    {
        /// <summary>Nothing left to send.</summary>
        Idle,
        /// <summary>Packets wait for the guest to post RX buffers; a kick on the RX ring will come.</summary>
        WaitingForBuffers,
        /// <summary>The budget ran out with packets and buffers left: drain again soon.</summary>
        BudgetExhausted,
        /// <summary>The RX ring is not running.</summary>
        NotRunning,
    }

    /// <summary>Fills up to <paramref name="budget"/> RX chains from the outbound FIFO and notifies the guest once.</summary>
    public RxResult DrainRx(int budget)
    {
        var rx = _queues[RxQueueIndex];
        if (rx is null || _paused[RxQueueIndex])
            return RxResult.NotRunning;
        var used = 0;
        var result = RxResult.Idle;
        try
        {
            while (_outbound.Count > 0)
            {
                if (used == budget)
                {
                    result = RxResult.BudgetExhausted;
                    break;
                }
                var status = rx.TryPop(out var chain, out var chainError);
                if (status == PopStatus.Empty)
                {
                    if (rx.IsBroken)
                    {
                        _log.Warning("RX ring is corrupt (avail index ran more than the ring size ahead); ignoring it until the driver resets");
                        result = RxResult.WaitingForBuffers;
                        break;
                    }
                    // Re-arm kicks and look again: buffers may have been posted meanwhile.
                    if (rx.EnableNotification())
                        continue;
                    result = RxResult.WaitingForBuffers;
                    break;
                }
                used++;
                if (status == PopStatus.Malformed)
                {
                    _log.Warning($"RX descriptor chain dropped: {chainError}");
                    continue;
                }
                var error = VsockPacket.TryFromRxChain(_memory, chain, out var packet);
                if (error != VsockPacketError.None)
                {
                    _log.Warning($"RX buffer {chain.HeadIndex} unusable: {VsockPacketErrors.Describe(error)}");
                    rx.AddUsed(chain.HeadIndex, 0);
                    continue;
                }
                rx.AddUsed(chain.HeadIndex, FillRxPacket(ref packet));
            }
        }
        finally
        {
            if (used > 0)
            {
                rx.PublishUsed();
                if (rx.NeedsNotification())
                    _callFds[RxQueueIndex]?.Signal();
            }
        }
        return result;
    }

    /// <summary>Writes the head of the FIFO (or the next part of it) into one RX buffer; returns the used length.</summary>
    private uint FillRxPacket(ref VsockPacket packet)
    {
        var next = _outbound.Peek();
        var header = next.Header;
        var remaining = next.Length - _headSent;
        var chunk = (int)Math.Min((uint)remaining, packet.DataCapacity);
        if (next.Data is not null && remaining > 0 && chunk == 0)
        {
            // A header-only RX buffer cannot carry payload; hand it back empty.
            return 0;
        }
        header.Len = (uint)chunk;
        packet.SetHeader(header);
        if (chunk > 0)
            packet.WriteData(next.Data.AsSpan(next.Offset + _headSent, chunk));
        _headSent += chunk;
        if (_headSent >= next.Length)
        {
            _outbound.Dequeue();
            _headSent = 0;
            _events.PacketDelivered(next);
        }
        return (uint)(VsockConstants.HeaderSize + chunk);
    }

    /// <summary>
    /// Hands up to <paramref name="budget"/> TX packets to <paramref name="handler"/>, completes their
    /// chains (used length 0, as the device only reads TX buffers) and notifies the guest once.
    /// Returns true if the budget ran out with chains left.
    /// </summary>
    public bool DrainTx(int budget, ITxPacketHandler handler)
    {
        var tx = _queues[TxQueueIndex];
        if (tx is null || _paused[TxQueueIndex])
            return false;
        var processed = 0;
        var more = false;
        try
        {
            tx.DisableNotification();
            while (true)
            {
                if (processed == budget)
                {
                    more = true;
                    break;
                }
                var status = tx.TryPop(out var chain, out var chainError);
                if (status == PopStatus.Empty)
                {
                    if (tx.IsBroken)
                    {
                        _log.Warning("TX ring is corrupt (avail index ran more than the ring size ahead); ignoring it until the driver resets");
                        break;
                    }
                    if (tx.EnableNotification())
                    {
                        tx.DisableNotification();
                        continue;
                    }
                    break;
                }
                processed++;
                if (status == PopStatus.Malformed)
                {
                    _log.Warning($"TX descriptor chain dropped: {chainError}");
                    continue;
                }
                var error = VsockPacket.TryFromTxChain(_memory, chain, VsockConstants.MaxPacketPayload, out var packet);
                if (error == VsockPacketError.None)
                    handler.OnTxPacket(ref packet);
                else
                    _log.Warning($"TX packet dropped: {VsockPacketErrors.Describe(error)}");
                // Unlike the reference, a chain that fails to parse is still returned to the guest.
                tx.AddUsed(chain.HeadIndex, 0);
            }
        }
        finally
        {
            if (processed > 0)
            {
                tx.PublishUsed();
                if (tx.NeedsNotification())
                    _callFds[TxQueueIndex]?.Signal();
            }
        }
        return more;
    }

    private void DropOutbound()
    {
        while (_outbound.TryDequeue(out var p))
            _events.PacketDropped(p);
        _headSent = 0;
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
