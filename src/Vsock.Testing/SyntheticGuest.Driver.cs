using Vsock.Device.Interop;
using Vsock.Testing.Packets;
using Vsock.Testing.Virtio;

namespace Vsock.Testing;

// The virtio driver: interrupts in, used buffers consumed, RX kept stocked, TX packets posted.
public sealed partial class SyntheticGuest
{
    private readonly Queue<byte[]> _controlBacklog = new();
    private readonly AsyncPulse _txSpace = new();
    private readonly List<string> _violations = [];
    private long _txKicks;
    private long _rxKicks;
    private long _rxInterrupts;
    private long _txInterrupts;
    private long _packetsSent;
    private long _packetsReceived;
    private long _payloadBytesSent;
    private long _payloadBytesReceived;
    private long _creditUpdatesSent;
    private long _creditViolations;
    private long _usedTxChains;
    private long _usedRxBuffers;
    private Exception? _driverFault;

    /// <summary>Counters for benchmarks and assertions.</summary>
    public GuestStatistics Statistics
    {
        get
        {
            lock (_sync)
            {
                return new GuestStatistics(_txKicks, _rxKicks, _rxInterrupts, _txInterrupts, _packetsSent, _packetsReceived,
                    _payloadBytesSent, _payloadBytesReceived, _creditUpdatesSent, _creditViolations, _usedTxChains, _usedRxBuffers);
            }
        }
    }

    /// <summary>
    /// Things the device did that a Linux driver would reject: used ids that are no chain in flight,
    /// RX used lengths shorter than header + len, RW beyond the credit we gave. Empty for a correct device.
    /// </summary>
    public IReadOnlyList<string> Violations
    {
        get
        {
            lock (_sync)
                return [.. _violations];
        }
    }

    /// <summary>An exception that stopped the driver thread (null while it runs normally).</summary>
    public Exception? DriverFault => Volatile.Read(ref _driverFault);

    private void DriverLoop()
    {
        Span<EpollEvent> events = stackalloc EpollEvent[4];
        try
        {
            var pollTicks = (long)(_options.PollBeforeSleep.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
            while (!_stopping)
            {
                var count = WaitForInterrupts(events, pollTicks);
                bool rx = false, tx = false;
                for (var i = 0; i < count; i++)
                {
                    switch (events[i].Data)
                    {
                        case RxEvent:
                            rx |= _rxCall.TryRead(out _);
                            break;
                        case TxEvent:
                            tx |= _txCall.TryRead(out _);
                            break;
                        default:
                            _wake.TryRead(out _);
                            break;
                    }
                }
                if (_stopping)
                    break;
                lock (_sync)
                {
                    if (_disposed)
                        break;
                    if (rx)
                        _rxInterrupts++;
                    if (tx)
                        _txInterrupts++;
                    ServiceQueues();
                    PumpApplications();
                    // The applications may just have filled the TX ring: with lazy reclaim, TX interrupts were left
                    // off by ServiceQueues (no room was wanted then), and nothing else would wake us to free it.
                    while (EnableTxInterruptsIfWanted())
                    {
                        ServiceQueues();
                        PumpApplications();
                    }
                }
            }
        }
        catch (Exception e)
        {
            // Never take the test host down from a background thread: record it and stop.
            Volatile.Write(ref _driverFault, e);
            lock (_sync)
            {
                _violations.Add($"driver thread stopped: {e}");
                WakeEveryone();
            }
        }
    }

    /// <summary>
    /// Waits for an interrupt: polls for <paramref name="pollTicks"/> first when configured (a vCPU that
    /// busy-polls a moment before it halts), then blocks.
    /// </summary>
    private int WaitForInterrupts(Span<EpollEvent> events, long pollTicks)
    {
        if (pollTicks > 0)
        {
            var start = System.Diagnostics.Stopwatch.GetTimestamp();
            do
            {
                var polled = _epoll.Wait(events, 0);
                if (polled > 0)
                    return polled;
            } while (!_stopping && System.Diagnostics.Stopwatch.GetTimestamp() - start < pollTicks);
        }
        return _epoll.Wait(events, -1);
    }

    /// <summary>Drains both used rings, refills RX, re-arms interrupts; loops while the device raced us (under _sync).</summary>
    private void ServiceQueues()
    {
        do
        {
            ReclaimTx();
            ConsumeRx();
            FillRx(kick: true);
        }
        while (_rx.EnableInterrupts() | EnableTxInterruptsIfWanted());
    }

    /// <summary>With <see cref="SyntheticGuestOptions.LazyTxReclaim"/>: TX interrupts only while someone needs TX room.</summary>
    private bool EnableTxInterruptsIfWanted()
    {
        if (!_options.LazyTxReclaim || TxRoomWanted)
            return _tx.EnableInterrupts();
        _tx.DisableInterrupts();
        return false;
    }

    private bool TxRoomWanted => _tx.FreeCount < _tx.Size / 2 || _controlBacklog.Count > 0 || _txSpace.IsArmed || _applicationWaitsForTx;

    /// <summary>A driver application could not post for lack of TX descriptors (cleared when chains are reclaimed).</summary>
    private bool _applicationWaitsForTx;

    internal void ApplicationWaitsForTx() => _applicationWaitsForTx = true;

    /// <summary>
    /// With lazy reclaim a driver pass leaves TX interrupts off when the ring has room, and the driver
    /// applications may fill it right after (later in the same pass, or when one starts). Then TX interrupts
    /// must come back on, with one more pass if chains were used meanwhile: otherwise a source that waits for
    /// TX room, with no RX due (no credit update yet), leaves the driver asleep for good (under _sync).
    /// </summary>
    internal void RearmTxForApplications()
    {
        if (_options.LazyTxReclaim && TxRoomWanted && _tx.EnableInterrupts())
            _wake.Signal();
    }

    /// <summary>Frees the TX chains the device has used (no other side effects; safe inside TryPostTx).</summary>
    private bool FreeUsedTx()
    {
        var reclaimed = false;
        while (_tx.TryTakeUsed(out var head, out _, out var violation))
        {
            if (violation is not null)
            {
                _violations.Add("TX: " + violation);
                continue;
            }
            _tx.Free(head);
            _usedTxChains++;
            reclaimed = true;
        }
        return reclaimed;
    }

    private void ReclaimTx()
    {
        if (!FreeUsedTx() && !(_options.LazyTxReclaim && (_controlBacklog.Count > 0 || _txSpace.IsArmed)))
            return;
        _applicationWaitsForTx = false; // the applications retry after this pass, and say so again if still short
        while (_controlBacklog.Count > 0 && TryPostTx(_controlBacklog.Peek(), default))
            _controlBacklog.Dequeue();
        _txSpace.Pulse();
    }

    private void ConsumeRx()
    {
        while (_rx.TryTakeUsed(out var head, out var usedLength, out var violation))
        {
            if (violation is not null)
            {
                _violations.Add("RX: " + violation);
                continue;
            }
            _usedRxBuffers++;
            if (_rawRxHeads.Remove(head))
            {
                // A test's own RX chain: the device's used length is the result; there is nothing to parse.
                _rawRxUsed.Add((head, usedLength));
                _rx.Free(head);
                continue;
            }
            ParseRx(head, usedLength);
            _rx.Free(head); // after parsing: the buffer is reposted (and overwritten) only now
        }
    }

    private void ParseRx(ushort head, uint usedLength)
    {
        ulong headerGpa, payloadGpa;
        uint capacity;
        if (_options.RxLayout == RxLayout.SingleDescriptor)
        {
            headerGpa = _buffers.RxData(head);
            payloadGpa = headerGpa + VsockHeader.Size;
            capacity = (uint)_buffers.RxBufferSize;
        }
        else
        {
            headerGpa = _buffers.RxHeader(head);
            payloadGpa = _buffers.RxData(head);
            capacity = VsockHeader.Size + (uint)_buffers.RxBufferSize;
        }
        // Linux virtio_transport_rx_work: drop short/long buffers and a len that does not fit the used length.
        if (usedLength < VsockHeader.Size || usedLength > capacity)
        {
            _violations.Add($"RX: used length {usedLength} outside [{VsockHeader.Size}, {capacity}] (descriptor {head})");
            return;
        }
        var header = VsockHeader.ReadFrom(_ram.Span(headerGpa, VsockHeader.Size));
        if (header.Len > usedLength - VsockHeader.Size)
        {
            _violations.Add($"RX: header len {header.Len} exceeds used length {usedLength} - 44 ({header})");
            return;
        }
        var payload = _ram.Span(payloadGpa, (int)header.Len);
        _packetsReceived++;
        _payloadBytesReceived += header.Len;
        if (_options.RecordReceived)
        {
            _received.Add(new ReceivedPacket(header, payload.ToArray(), usedLength, DateTime.UtcNow));
            _receivedChanged.Pulse();
        }
        OnPacket(header, payload);
    }

    /// <summary>Posts RX buffers while descriptors are free; kicks when the device wants to hear about them.</summary>
    private void FillRx(bool kick)
    {
        if (_rxRefillPaused)
            return;
        var perBuffer = _options.RxLayout == RxLayout.TwoDescriptors ? 2 : 1;
        Span<ushort> chain = stackalloc ushort[2];
        var posted = false;
        while (_rx.FreeCount - _options.RxReserve >= perBuffer)
        {
            var indices = chain[..perBuffer];
            _rx.TryAllocate(indices);
            var head = indices[0];
            switch (_options.RxLayout)
            {
                case RxLayout.SingleDescriptor:
                    _rx.WriteDescriptor(head, _buffers.RxData(head), (uint)_buffers.RxBufferSize, DriverQueue.DescWrite, 0);
                    break;
                case RxLayout.TwoDescriptors:
                    _rx.WriteDescriptor(head, _buffers.RxHeader(head), VsockHeader.Size, DriverQueue.DescWrite | DriverQueue.DescNext, indices[1]);
                    _rx.WriteDescriptor(indices[1], _buffers.RxData(head), (uint)_buffers.RxBufferSize, DriverQueue.DescWrite, 0);
                    break;
                default:
                    var table = _buffers.IndirectTable(head);
                    var entries = _ram.Span(table, BufferLayout.IndirectTableSize);
                    DriverQueue.Encode(entries, _buffers.RxHeader(head), VsockHeader.Size, DriverQueue.DescWrite | DriverQueue.DescNext, 1);
                    DriverQueue.Encode(entries[DriverQueue.DescriptorSize..], _buffers.RxData(head), (uint)_buffers.RxBufferSize, DriverQueue.DescWrite, 0);
                    _rx.WriteDescriptor(head, table, BufferLayout.IndirectTableSize, DriverQueue.DescIndirect, 0);
                    break;
            }
            _rx.MakeAvailable(head);
            posted = true;
        }
        if (posted && kick && _rx.KickNeeded())
            KickRxNow();
    }

    private void KickRx()
    {
        _rx.KickNeeded(); // forget the batch: this kick covers everything posted so far
        KickRxNow();
    }

    private void KickRxNow()
    {
        _rxKicks++;
        _rxKick.Signal();
    }

    /// <summary>
    /// Posts one TX packet in the configured layout, kicking if the device asks for it. False when
    /// the ring lacks free descriptors. <paramref name="header"/> is written as given (44 bytes).
    /// </summary>
    private bool TryPostTx(ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload)
    {
        if (payload.Length > _options.MaxPacketPayload)
            throw new ArgumentException($"payload of {payload.Length} bytes exceeds MaxPacketPayload {_options.MaxPacketPayload}", nameof(payload));
        var layout = _options.TxLayout;
        int count;
        if (payload.IsEmpty || layout == TxLayout.SingleDescriptor)
            count = 1;
        else if (layout == TxLayout.HeaderThenPayload)
            count = 2;
        else
            count = 1 + (payload.Length + _options.TxFragmentSize - 1) / _options.TxFragmentSize;
        Span<ushort> indices = count <= 64 ? stackalloc ushort[count] : new ushort[count];
        if (_options.LazyTxReclaim && _tx.FreeCount < count)
            FreeUsedTx();
        if (!_tx.TryAllocate(indices))
            return false;
        var head = indices[0];
        var slot = _buffers.TxSlot(head);
        header[..VsockHeader.Size].CopyTo(_ram.Span(slot, VsockHeader.Size));
        payload.CopyTo(_ram.Span(slot + VsockHeader.Size, payload.Length));
        if (count == 1)
        {
            var length = (uint)(VsockHeader.Size + (layout == TxLayout.SingleDescriptor ? payload.Length : 0));
            _tx.WriteDescriptor(head, slot, length, 0, 0);
        }
        else
        {
            _tx.WriteDescriptor(head, slot, VsockHeader.Size, DriverQueue.DescNext, indices[1]);
            var fragment = layout == TxLayout.HeaderThenPayload ? payload.Length : _options.TxFragmentSize;
            var offset = 0;
            for (var i = 1; i < count; i++)
            {
                var length = Math.Min(fragment, payload.Length - offset);
                var last = i == count - 1;
                _tx.WriteDescriptor(indices[i], slot + VsockHeader.Size + (ulong)offset, (uint)length,
                    last ? (ushort)0 : DriverQueue.DescNext, last ? (ushort)0 : indices[i + 1]);
                offset += length;
            }
        }
        PublishTx(head);
        _packetsSent++;
        _payloadBytesSent += payload.Length;
        return true;
    }

    private void PublishTx(ushort head)
    {
        _tx.MakeAvailable(head);
        if (_tx.KickNeeded())
        {
            _txKicks++;
            _txKick.Signal();
        }
    }

    /// <summary>Sends a header-only packet now, or queues it behind earlier ones when the TX ring is full (Linux's send_pkt_queue).</summary>
    private void SendControl(in VsockHeader header)
    {
        var bytes = header.ToBytes();
        if (_controlBacklog.Count == 0 && TryPostTx(bytes, default))
            return;
        _controlBacklog.Enqueue(bytes);
    }

    private void ThrowIfDisposed()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_memoryPulled)
            throw new InvalidOperationException("the guest RAM was truncated (TryShrinkMemory): only raw vhost-user calls, KickTx and disposal are left");
        if (_driverFault is { } fault)
            throw new InvalidOperationException("the synthetic guest's driver thread failed", fault);
    }
}
