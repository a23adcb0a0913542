using System.Buffers.Binary;
using System.Numerics;
using Vsock.Device.Memory;

namespace Vsock.Device.Virtio;

/// <summary>
/// The device side of one split virtqueue (virtio 1.2 §2.7) in guest memory.
///
/// Ring discipline (as in io_uring's CQ and Linux vhost): acquire-load the guest's <c>avail.idx</c>, then read
/// ring entries and descriptors; write used elements, then release-store <c>used.idx</c> once per batch. Every
/// value the guest controls is copied out once before it is checked, so a guest rewriting the rings while we
/// read them cannot get an unchecked value past us.
///
/// Not thread-safe: one owner (the VM's device, on its event-loop thread) drives a queue. The three ring areas are checked at
/// construction and their host pointers cached; the queue must not be used after its <see cref="GuestMemory"/>
/// is disposed (the same rule as for any span obtained from it).
/// </summary>
public sealed unsafe class SplitQueue
{
    public const ushort MaxSize = 32768;

    /// <summary>Largest indirect table we accept: 65536 bytes. Linux drivers never build tables near this size.</summary>
    public const int MaxIndirectEntries = 65536 / VirtqDescriptor.Size;

    private readonly GuestMemory _memory;
    private readonly byte* _descTable;
    private readonly byte* _avail;
    private readonly byte* _used;
    private readonly ushort _mask;
    private readonly bool _indirectDescriptors;
    // One buffer per descriptor of the longest possible chain: up to Size-1 direct descriptors and then one
    // indirect table. Allocated once; chains are views into it, so popping allocates nothing.
    private readonly GuestBuffer[] _scratch;

    private ushort _availIdxSeen;     // the last avail.idx we loaded; entries before it are safe to read
    private ushort _publishedUsed;    // the used.idx we last stored
    private ushort _lastCheckedUsed;  // the used.idx at the last NeedsNotification (virtq_need_event's old_idx)
    private ushort _usedFlags;        // our own used.flags; the guest never writes it
    private int _rewindable;         // chains popped since the last AddUsed or malformed pop: Rewind may return them

    public SplitQueue(GuestMemory memory, ushort size, ulong descTableGpa, ulong availRingGpa, ulong usedRingGpa,
        bool eventIdx, bool indirectDescriptors, ushort nextAvail = 0)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (size == 0 || size > MaxSize || !BitOperations.IsPow2(size))
            throw new ArgumentOutOfRangeException(nameof(size), size, "queue size must be a power of 2 between 1 and 32768");

        _memory = memory;
        _descTable = MapArea(memory, "descriptor table", descTableGpa, SplitRingLayout.DescriptorTableBytes(size), SplitRingLayout.DescriptorTableAlignment);
        _avail = MapArea(memory, "avail ring", availRingGpa, SplitRingLayout.AvailRingBytes(size), SplitRingLayout.AvailRingAlignment);
        _used = MapArea(memory, "used ring", usedRingGpa, SplitRingLayout.UsedRingBytes(size), SplitRingLayout.UsedRingAlignment);

        Size = size;
        _mask = (ushort)(size - 1);
        EventIdx = eventIdx;
        _indirectDescriptors = indirectDescriptors;
        _scratch = new GuestBuffer[size + (indirectDescriptors ? MaxIndirectEntries : 0)];

        // vhost-user SET_VRING_BASE gives one index for both rings: everything before it was used already.
        NextAvail = nextAvail;
        NextUsed = nextAvail;
        _availIdxSeen = nextAvail;
        _publishedUsed = nextAvail;
        _lastCheckedUsed = nextAvail;
    }

    public ushort Size { get; }
    /// <summary>Avail ring position of the next chain to pop (free-running, wraps at 65536).</summary>
    public ushort NextAvail { get; private set; }
    /// <summary>Used ring position of the next used element to write (free-running, wraps at 65536).</summary>
    public ushort NextUsed { get; private set; }
    public bool EventIdx { get; }
    /// <summary>VIRTIO_F_NOTIFY_ON_EMPTY was negotiated.</summary>
    public bool NotifyOnEmpty { get; set; }

    /// <summary>
    /// The guest published an avail.idx more than <see cref="Size"/> ahead of <see cref="NextAvail"/> (or moved it
    /// backwards). Sticky: a broken queue pops nothing until it is rebuilt (the device needs a reset).
    /// </summary>
    public bool IsBroken { get; private set; }

    /// <summary>
    /// How many chains the guest has made available that we have not popped, from a fresh read of avail.idx.
    /// 0 if the ring is broken (see <see cref="IsBroken"/>).
    /// </summary>
    public int PendingCount()
    {
        if (IsBroken || !RefreshAvailIdx())
            return 0;
        return (ushort)(_availIdxSeen - NextAvail);
    }

    /// <summary>
    /// Pops the next chain. avail.idx is only re-read (acquire) when the chains known from the last read are used
    /// up, so a batch costs one shared-index load. <see cref="PopStatus.Malformed"/>: the chain was consumed and,
    /// when its head index is valid, already completed with used length 0; <paramref name="error"/> says why and
    /// <paramref name="chain"/> carries only the head index. The caller logs and continues.
    /// </summary>
    /// <param name="completeMalformed">
    /// False: a malformed chain is popped but not completed, and can be given back with <see cref="Rewind"/> like a
    /// good one (so chains popped before it stay rewindable); the caller rewinds it, or completes it itself.
    /// </param>
    public PopStatus TryPop(out DescriptorChain chain, out ChainError error, bool completeMalformed = true)
    {
        chain = default;
        error = ChainError.None;
        if (IsBroken)
            return PopStatus.Empty;
        if (NextAvail == _availIdxSeen && (!RefreshAvailIdx() || NextAvail == _availIdxSeen))
            return PopStatus.Empty;

        var head = BinaryPrimitives.ReadUInt16LittleEndian(new ReadOnlySpan<byte>(_avail + SplitRingLayout.RingOffset + 2 * (NextAvail & _mask), 2));
        NextAvail++;

        if (head >= Size)
        {
            // No descriptor to give back: the used ring only takes valid heads. Consumed for good, so
            // nothing popped before it can be rewound past it (unless the caller asked to rewind it).
            _rewindable = completeMalformed ? 0 : _rewindable + 1;
            error = ChainError.HeadIndexOutOfRange;
            chain = new DescriptorChain(head, default, 0, 0);
            return PopStatus.Malformed;
        }

        error = Walk(head, out var count, out var readable, out var writable);
        if (error != ChainError.None)
        {
            if (completeMalformed)
                AddUsed(head, 0);
            else
                _rewindable++;
            chain = new DescriptorChain(head, default, 0, 0);
            return PopStatus.Malformed;
        }

        chain = new DescriptorChain(head, new ReadOnlySpan<GuestBuffer>(_scratch, 0, count), readable, writable);
        _rewindable++;
        return PopStatus.Chain;
    }

    /// <summary>How many of the chains popped last can still be given back with <see cref="Rewind"/>.</summary>
    public int Rewindable => _rewindable;

    /// <summary>
    /// Un-pops the last <paramref name="count"/> chains (RX: the host had fewer bytes than the buffers
    /// taken for them). The avail ring is untouched, so they are simply popped again later. Only chains
    /// popped since the last <see cref="AddUsed"/> or malformed pop can be rewound (<see cref="Rewindable"/>):
    /// used elements are written in pop order.
    /// </summary>
    public void Rewind(int count)
    {
        if (count < 0 || count > _rewindable)
            throw new InvalidOperationException($"cannot rewind {count} chains: {_rewindable} popped since the last completion");
        _rewindable -= count;
        NextAvail -= (ushort)count;
    }

    /// <summary>Writes the used element at <see cref="NextUsed"/> (invisible to the guest until <see cref="PublishUsed"/>).</summary>
    public void AddUsed(ushort headIndex, uint length)
    {
        if (headIndex >= Size)
            throw new ArgumentOutOfRangeException(nameof(headIndex), headIndex, "head index beyond the queue size");
        _rewindable = 0;
        var element = new Span<byte>(_used + SplitRingLayout.RingOffset + SplitRingLayout.UsedElementSize * (NextUsed & _mask), SplitRingLayout.UsedElementSize);
        BinaryPrimitives.WriteUInt32LittleEndian(element, headIndex);
        BinaryPrimitives.WriteUInt32LittleEndian(element[4..], length);
        NextUsed++;
    }

    /// <summary>Release-store of used.idx: every element added before becomes visible to the guest, lengths first (spec §2.7.8).</summary>
    public void PublishUsed()
    {
        _publishedUsed = NextUsed;
        Volatile.Write(ref *(ushort*)(_used + SplitRingLayout.IdxOffset), NextUsed);
    }

    /// <summary>
    /// Whether the guest wants an interrupt for the used elements published since the previous call. Call after
    /// <see cref="PublishUsed"/>. Nothing published since the previous call: false. With NOTIFY_ON_EMPTY: true when
    /// the avail ring is now empty. EVENT_IDX: <c>virtq_need_event(used_event, new, old)</c> with old = used.idx at
    /// the previous call (Linux vhost's signalled_used). Otherwise: avail.flags lacks NO_INTERRUPT.
    /// </summary>
    public bool NeedsNotification()
    {
        // Our used.idx store must be visible before we read the guest's used_event/flags, or we can miss the
        // guest re-enabling interrupts just after our store (the pairing barrier is in the driver).
        Interlocked.MemoryBarrier();
        var newIdx = _publishedUsed;
        var oldIdx = _lastCheckedUsed;
        _lastCheckedUsed = newIdx;
        if (newIdx == oldIdx)
            return false;
        if (NotifyOnEmpty && Volatile.Read(ref *(ushort*)(_avail + SplitRingLayout.IdxOffset)) == NextAvail)
            return true;
        if (EventIdx)
        {
            var usedEvent = Volatile.Read(ref *(ushort*)(_avail + SplitRingLayout.UsedEventOffset(Size)));
            return (ushort)(newIdx - usedEvent - 1) < (ushort)(newIdx - oldIdx);
        }
        return (Volatile.Read(ref *(ushort*)(_avail + SplitRingLayout.FlagsOffset)) & SplitRingLayout.AvailFlagNoInterrupt) == 0;
    }

    /// <summary>Asks the guest not to kick: used.flags |= NO_NOTIFY. With EVENT_IDX a no-op (avail_event is simply not advanced).</summary>
    public void DisableNotification()
    {
        if (EventIdx)
            return;
        _usedFlags |= SplitRingLayout.UsedFlagNoNotify;
        Volatile.Write(ref *(ushort*)(_used + SplitRingLayout.FlagsOffset), _usedFlags);
    }

    /// <summary>
    /// Re-arms kicks (EVENT_IDX: avail_event = <see cref="NextAvail"/>; else clears NO_NOTIFY), then re-checks
    /// avail.idx. True if chains arrived meanwhile: the guest may have added them before it saw the re-arm and so
    /// will not kick for them; the caller processes them and calls this again.
    /// </summary>
    public bool EnableNotification()
    {
        if (EventIdx)
        {
            Volatile.Write(ref *(ushort*)(_used + SplitRingLayout.AvailEventOffset(Size)), NextAvail);
        }
        else
        {
            _usedFlags &= unchecked((ushort)~SplitRingLayout.UsedFlagNoNotify);
            Volatile.Write(ref *(ushort*)(_used + SplitRingLayout.FlagsOffset), _usedFlags);
        }
        // The re-arm store must be visible before we load avail.idx (store-load ordering needs a full fence).
        Interlocked.MemoryBarrier();
        if (IsBroken || !RefreshAvailIdx())
            return false;
        return _availIdxSeen != NextAvail;
    }

    private bool RefreshAvailIdx()
    {
        var idx = Volatile.Read(ref *(ushort*)(_avail + SplitRingLayout.IdxOffset));
        if ((ushort)(idx - NextAvail) > Size)
        {
            IsBroken = true;
            return false;
        }
        _availIdxSeen = idx;
        return true;
    }

    /// <summary>
    /// Follows the chain from <paramref name="head"/> into the scratch array. Loops are caught by counting: a
    /// table of n entries cannot hold a chain of more than n descriptors.
    /// </summary>
    private ChainError Walk(ushort head, out int count, out ulong readable, out ulong writable)
    {
        count = 0;
        readable = 0;
        writable = 0;
        var table = _descTable;
        uint tableLength = Size;
        uint index = head;
        uint visited = 0;
        var inIndirect = false;
        var seenWritable = false;

        while (true)
        {
            if (index >= tableLength)
                return ChainError.NextIndexOutOfRange;
            if (++visited > tableLength)
                return ChainError.ChainTooLong;

            var entry = new ReadOnlySpan<byte>(table + (ulong)index * VirtqDescriptor.Size, VirtqDescriptor.Size);
            var address = BinaryPrimitives.ReadUInt64LittleEndian(entry);
            var length = BinaryPrimitives.ReadUInt32LittleEndian(entry[8..]);
            var flags = BinaryPrimitives.ReadUInt16LittleEndian(entry[12..]);
            var next = BinaryPrimitives.ReadUInt16LittleEndian(entry[14..]);

            if ((flags & DescriptorFlags.Indirect) != 0)
            {
                if (inIndirect)
                    return ChainError.IndirectNested;
                if (!_indirectDescriptors)
                    return ChainError.IndirectNotNegotiated;
                if ((flags & DescriptorFlags.Next) != 0)
                    return ChainError.IndirectWithNext;
                if (length == 0 || length % VirtqDescriptor.Size != 0 || length / VirtqDescriptor.Size > MaxIndirectEntries)
                    return ChainError.IndirectTableBadLength;
                if (!_memory.TryGetHostPointer(address, length, out var indirectTable))
                    return ChainError.AddressOutOfRange;
                // The WRITE flag of the table descriptor itself is ignored (spec §2.7.5.3.2).
                table = indirectTable;
                tableLength = length / VirtqDescriptor.Size;
                index = 0;
                visited = 0;
                inIndirect = true;
                continue;
            }

            var deviceWritable = (flags & DescriptorFlags.Write) != 0;
            if (deviceWritable)
                seenWritable = true;
            else if (seenWritable)
                return ChainError.ReadableAfterWritable;
            if (!_memory.TryGetHostPointer(address, length, out _))
                return ChainError.AddressOutOfRange;
            if (readable + writable + length > uint.MaxValue)
                return ChainError.TotalLengthOverflow;
            if (deviceWritable)
                writable += length;
            else
                readable += length;

            _scratch[count++] = new GuestBuffer(address, length, deviceWritable);
            if ((flags & DescriptorFlags.Next) == 0)
                return ChainError.None;
            index = next;
        }
    }

    private static byte* MapArea(GuestMemory memory, string what, ulong gpa, ulong length, int alignment)
    {
        if (gpa % (ulong)alignment != 0)
            throw new ArgumentException($"{what} at 0x{gpa:x} is not {alignment}-byte aligned");
        if (!memory.TryGetHostPointer(gpa, length, out var pointer))
            throw new GuestMemoryException($"{what} 0x{gpa:x}+0x{length:x} is not inside one guest memory region");
        // Volatile index accesses need natural alignment on the host side too.
        if (((nint)pointer & (alignment - 1)) != 0)
            throw new ArgumentException($"{what} at 0x{gpa:x} maps to a misaligned host address");
        return pointer;
    }
}
