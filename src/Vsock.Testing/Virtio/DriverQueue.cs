using System.Buffers.Binary;

namespace Vsock.Testing.Virtio;

/// <summary>
/// The driver half of a split virtqueue (virtio 1.x §2.7), written from the spec rather than from
/// the daemon's device half: descriptor table, available ring (plus <c>used_event</c>) and used
/// ring (plus <c>avail_event</c>) in guest RAM; the free list and each chain's descriptors are kept
/// in shadow arrays here, as Linux's <c>desc_extra</c> does, so nothing the device writes can make
/// us free a descriptor twice. Not thread-safe: the owning guest serialises access.
/// </summary>
internal sealed unsafe class DriverQueue
{
    public const ushort DescNext = 1;
    public const ushort DescWrite = 2;
    public const ushort DescIndirect = 4;
    public const ushort UsedFlagNoNotify = 1;
    public const int DescriptorSize = 16;
    public const int UsedElementSize = 8;

    private readonly byte* _desc;
    private readonly byte* _avail;
    private readonly byte* _used;
    private readonly ushort _mask;
    private readonly ushort[] _freeNext;
    private readonly ushort[] _chainNext;
    private readonly ushort[] _chainLength; // per head; 0 = not a head in flight
    private int _freeHead;
    private ushort _availIdx;
    private ushort _lastUsedIdx;
    private ushort _kickedAvailIdx;

    public DriverQueue(GuestRam ram, ushort size)
    {
        if (size == 0 || (size & (size - 1)) != 0 || size > 32768)
            throw new ArgumentOutOfRangeException(nameof(size), "queue size must be a power of 2 up to 32768");
        Size = size;
        _mask = (ushort)(size - 1);
        // Page-aligned parts, as QEMU's legacy layout and Linux's vring_create_virtqueue produce.
        DescGpa = ram.Allocate((ulong)size * DescriptorSize, 4096);
        AvailGpa = ram.Allocate(6 + 2ul * size, 4096);
        UsedGpa = ram.Allocate(6 + (ulong)UsedElementSize * size, 4096);
        _desc = ram.Pointer(DescGpa, (ulong)size * DescriptorSize);
        _avail = ram.Pointer(AvailGpa, 6 + 2ul * size);
        _used = ram.Pointer(UsedGpa, 6 + (ulong)UsedElementSize * size);
        _freeNext = new ushort[size];
        _chainNext = new ushort[size];
        _chainLength = new ushort[size];
        for (var i = 0; i < size; i++)
            _freeNext[i] = (ushort)(i + 1);
        _freeHead = 0;
        FreeCount = size;
    }

    public ushort Size { get; }
    public ulong DescGpa { get; }
    public ulong AvailGpa { get; }
    public ulong UsedGpa { get; }

    /// <summary>VIRTIO_RING_F_EVENT_IDX negotiated: publish used_event, read avail_event.</summary>
    public bool EventIdx { get; set; }

    public int FreeCount { get; private set; }

    public int ChainsInFlight { get; private set; }

    /// <summary>Next available index this driver will publish (the shadow of avail->idx).</summary>
    public ushort AvailIdx => _availIdx;

    /// <summary>Used entries consumed so far (mod 2^16).</summary>
    public ushort LastUsedIdx => _lastUsedIdx;

    public ushort DeviceUsedIdx => Volatile.Read(ref *(ushort*)(_used + 2));

    public ushort UsedFlags => Volatile.Read(ref *(ushort*)_used);

    /// <summary>The device's avail_event (meaningful with EVENT_IDX).</summary>
    public ushort AvailEvent => Volatile.Read(ref *(ushort*)(_used + 4 + UsedElementSize * Size));

    /// <summary>This driver's used_event as last written.</summary>
    public ushort UsedEvent => Volatile.Read(ref *(ushort*)(_avail + 4 + 2 * Size));

    public bool IsHeadInFlight(ushort head) => head < Size && _chainLength[head] != 0;

    /// <summary>Takes <paramref name="indices"/>.Length free descriptors and links them (in our shadow) as one chain headed by indices[0].</summary>
    public bool TryAllocate(Span<ushort> indices)
    {
        if (indices.IsEmpty || indices.Length > FreeCount)
            return false;
        for (var i = 0; i < indices.Length; i++)
        {
            var index = (ushort)_freeHead;
            _freeHead = _freeNext[index];
            indices[i] = index;
            if (i > 0)
                _chainNext[indices[i - 1]] = index;
        }
        FreeCount -= indices.Length;
        _chainLength[indices[0]] = (ushort)indices.Length;
        ChainsInFlight++;
        return true;
    }

    public void WriteDescriptor(ushort index, ulong address, uint length, ushort flags, ushort next)
    {
        if (index >= Size)
            throw new ArgumentOutOfRangeException(nameof(index));
        Encode(new Span<byte>(_desc + index * DescriptorSize, DescriptorSize), address, length, flags, next);
    }

    /// <summary>Writes one <c>virtq_desc</c> (also used for indirect tables).</summary>
    public static void Encode(Span<byte> d, ulong address, uint length, ushort flags, ushort next)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(d, address);
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], length);
        BinaryPrimitives.WriteUInt16LittleEndian(d[12..], flags);
        BinaryPrimitives.WriteUInt16LittleEndian(d[14..], next);
    }

    public (ulong Address, uint Length, ushort Flags, ushort Next) ReadDescriptor(ushort index)
    {
        var d = new ReadOnlySpan<byte>(_desc + index * DescriptorSize, DescriptorSize);
        return (BinaryPrimitives.ReadUInt64LittleEndian(d), BinaryPrimitives.ReadUInt32LittleEndian(d[8..]),
            BinaryPrimitives.ReadUInt16LittleEndian(d[12..]), BinaryPrimitives.ReadUInt16LittleEndian(d[14..]));
    }

    /// <summary>Puts <paramref name="head"/> in the available ring and publishes the new index (release: the descriptors are visible first).</summary>
    public void MakeAvailable(ushort head)
    {
        *(ushort*)(_avail + 4 + 2 * (_availIdx & _mask)) = head;
        _availIdx++;
        Volatile.Write(ref *(ushort*)(_avail + 2), _availIdx);
    }

    /// <summary>
    /// Whether the buffers published since the last kick need a notification: with EVENT_IDX the
    /// device's avail_event decides (vring_need_event), without it used->flags NO_NOTIFY does.
    /// Like Linux's virtqueue_kick_prepare, it forgets the batch either way.
    /// </summary>
    public bool KickNeeded()
    {
        // Our avail idx store must be visible before we read the device's suppression state (Linux: virtio_mb).
        Interlocked.MemoryBarrier();
        var old = _kickedAvailIdx;
        var now = _availIdx;
        _kickedAvailIdx = now;
        if (EventIdx)
            return NeedEvent(AvailEvent, now, old);
        return (UsedFlags & UsedFlagNoNotify) == 0;
    }

    /// <summary>virtq_need_event: true when <paramref name="eventIdx"/> lies in [old, new).</summary>
    public static bool NeedEvent(ushort eventIdx, ushort newIdx, ushort oldIdx) =>
        (ushort)(newIdx - eventIdx - 1) < (ushort)(newIdx - oldIdx);

    /// <summary>
    /// Takes the next used element if the device published one. <paramref name="violation"/> is set
    /// (and the element skipped) when its id is not a head we have in flight.
    /// </summary>
    public bool TryTakeUsed(out ushort head, out uint length, out string? violation)
    {
        var deviceIdx = DeviceUsedIdx; // acquire: the element is read after the index
        head = 0;
        length = 0;
        violation = null;
        if (deviceIdx == _lastUsedIdx)
            return false;
        if ((ushort)(deviceIdx - _lastUsedIdx) > Size)
            violation = $"used idx {deviceIdx} is more than {Size} ahead of {_lastUsedIdx}";
        var element = _used + 4 + UsedElementSize * (_lastUsedIdx & _mask);
        var id = BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(element, 4));
        length = BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(element + 4, 4));
        _lastUsedIdx++;
        if (id >= Size || _chainLength[id] == 0)
        {
            violation ??= $"used element {(ushort)(_lastUsedIdx - 1)} has id {id}, which is not a chain head in flight";
            return true;
        }
        head = (ushort)id;
        return true;
    }

    /// <summary>Returns a used chain's descriptors to the free list (from our shadow links, not the table).</summary>
    public void Free(ushort head)
    {
        if (!IsHeadInFlight(head))
            throw new InvalidOperationException($"descriptor {head} is not a chain head in flight");
        var count = _chainLength[head];
        _chainLength[head] = 0;
        var index = head;
        for (var i = 0; i < count; i++)
        {
            var next = _chainNext[index];
            _freeNext[index] = (ushort)_freeHead;
            _freeHead = index;
            index = next;
        }
        FreeCount += count;
        ChainsInFlight--;
    }

    /// <summary>
    /// Asks for an interrupt on the next used buffer (used_event = last seen used idx with EVENT_IDX;
    /// without it avail->flags stays 0) and reports whether more used entries arrived meanwhile,
    /// in which case the caller must drain again (Linux: virtqueue_enable_cb).
    /// </summary>
    public bool EnableInterrupts()
    {
        if (EventIdx)
            Volatile.Write(ref *(ushort*)(_avail + 4 + 2 * Size), _lastUsedIdx);
        else
            Volatile.Write(ref *(ushort*)_avail, (ushort)0);
        Interlocked.MemoryBarrier();
        return DeviceUsedIdx != _lastUsedIdx;
    }

    /// <summary>
    /// Asks for no interrupts (Linux: virtqueue_disable_cb): without EVENT_IDX avail->flags =
    /// NO_INTERRUPT; with it used_event is simply left behind, so the device's check never fires.
    /// </summary>
    public void DisableInterrupts()
    {
        if (!EventIdx)
            Volatile.Write(ref *(ushort*)_avail, (ushort)1);
    }
}
