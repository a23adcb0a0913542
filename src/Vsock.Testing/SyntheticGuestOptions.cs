namespace Vsock.Testing;

/// <summary>How the synthetic guest posts its RX buffers (the layouts Linux versions use).</summary>
public enum RxLayout
{
    /// <summary>One device-writable descriptor holding header and data (Linux ≥ 6.2).</summary>
    SingleDescriptor,
    /// <summary>A 44-byte header descriptor chained to a data descriptor (Linux before 6.2).</summary>
    TwoDescriptors,
    /// <summary>The two-descriptor layout inside an indirect table (needs VIRTIO_RING_F_INDIRECT_DESC).</summary>
    Indirect,
}

/// <summary>How the synthetic guest lays out TX packets.</summary>
public enum TxLayout
{
    /// <summary>A 44-byte header descriptor, then one payload descriptor (Linux 6.1).</summary>
    HeaderThenPayload,
    /// <summary>Header and payload in one descriptor.</summary>
    SingleDescriptor,
    /// <summary>Header descriptor, then the payload split over several descriptors (Linux ≥ 6.17 non-linear skbs).</summary>
    SplitPayload,
}

/// <summary>What the guest RAM is a file of (the ways QEMU backs guest RAM for vhost-user).</summary>
public enum GuestMemoryBacking
{
    /// <summary>A memfd sealed GROW|SHRINK|SEAL: QEMU's <c>memory-backend-memfd</c> (seal=on, its default).</summary>
    SealedMemFd,
    /// <summary>A memfd that allows sealing and has no seal: <c>memory-backend-memfd,seal=off</c>.</summary>
    SealableMemFd,
    /// <summary>A memfd created without MFD_ALLOW_SEALING: it can never be sealed.</summary>
    UnsealableMemFd,
    /// <summary>A file on /dev/shm (tmpfs), unlinked once open: <c>memory-backend-file,mem-path=/dev/shm,share=on</c>; cannot be sealed.</summary>
    ShmFile,
}

/// <summary>Knobs of a <see cref="SyntheticGuest"/>. Defaults are what QEMU 7.2 and a Linux guest do.</summary>
public sealed record SyntheticGuestOptions
{
    public static SyntheticGuestOptions Default { get; } = new();

    /// <summary>Guest RAM (one memfd region at GPA 0).</summary>
    public long MemorySize { get; init; } = 64L << 20;

    /// <summary>What the guest RAM is a file of.</summary>
    public GuestMemoryBacking MemoryBacking { get; init; } = GuestMemoryBacking.SealedMemFd;

    /// <summary>The VMM virtual address pretended for GPA 0.</summary>
    public ulong UserAddress { get; init; } = 0x7f00_0000_0000;

    /// <summary>SET_VRING_NUM for both rings (QEMU's vhost-user-vsock-pci uses 128).</summary>
    public ushort QueueSize { get; init; } = 128;

    /// <summary>Negotiate VIRTIO_VSOCK_F_SEQPACKET if the device offers it (Linux 5.14+ does; QEMU 7.2 passes it on).</summary>
    public bool Seqpacket { get; init; } = true;

    /// <summary>Negotiate VIRTIO_RING_F_EVENT_IDX if the device offers it (QEMU 7.2 does).</summary>
    public bool EventIdx { get; init; } = true;

    public RxLayout RxLayout { get; init; } = RxLayout.SingleDescriptor;

    /// <summary>Bytes per RX buffer: the whole descriptor (single layout) or the data descriptor (two descriptors / indirect).</summary>
    public int RxBufferSize { get; init; } = 4096;

    public TxLayout TxLayout { get; init; } = TxLayout.HeaderThenPayload;

    /// <summary>Payload bytes per descriptor with <see cref="TxLayout.SplitPayload"/>.</summary>
    public int TxFragmentSize { get; init; } = 4096;

    /// <summary>Largest RW payload per packet (Linux: VIRTIO_VSOCK_MAX_PKT_BUF_SIZE, 64 KiB).</summary>
    public int MaxPacketPayload { get; init; } = 64 * 1024;

    /// <summary>buf_alloc advertised by every stream (Linux default 256 KiB).</summary>
    public uint BufAlloc { get; init; } = 256 * 1024;

    /// <summary>A CREDIT_UPDATE goes out when the free space last advertised falls below this (Linux: 64 KiB).</summary>
    public uint CreditUpdateThreshold { get; init; } = 64 * 1024;

    /// <summary>How long CloseAsync waits for the peer's RST before sending its own (Linux VSOCK_CLOSE_TIMEOUT: 8 s).</summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(8);

    /// <summary>How long to wait for each vhost-user reply.</summary>
    public TimeSpan ReplyTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long to retry connecting while the back end's socket does not exist yet.</summary>
    public TimeSpan SocketWaitTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// End the start sequence with a GET_FEATURES round trip (newer QEMU's barrier; QEMU 7.2 does not),
    /// so <see cref="SyntheticGuest.Connect"/> returns only once the back end has processed it all.
    /// </summary>
    public bool SyncAfterStart { get; init; } = true;

    /// <summary>Keep every RX packet (header and payload copy) in <see cref="SyntheticGuest.Received"/>. Benchmarks turn it off.</summary>
    public bool RecordReceived { get; init; } = true;

    /// <summary>First local port for guest-initiated connections (Linux allocates from 49152 upward... here deterministically).</summary>
    public uint FirstEphemeralPort { get; init; } = 49152;

    /// <summary>
    /// How long the driver thread polls for interrupts before it blocks (zero: blocks at once). The
    /// benchmark sets it like the daemon's loop, as a busy guest vCPU would not halt between packets.
    /// </summary>
    public TimeSpan PollBeforeSleep { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// Reclaim used TX descriptors when posting rather than on a TX interrupt, asking for TX interrupts
    /// only while the TX ring is more than half full or a writer waits for room (as virtio-net's
    /// transmit path does). Linux's virtio-vsock asks for every TX interrupt (false, the default); the
    /// benchmark sets it so that an interrupt the guest does not need does not cost a wake-up.
    /// </summary>
    public bool LazyTxReclaim { get; init; }

    /// <summary>RX descriptors the driver leaves unstocked, for a hostile-guest test's <see cref="SyntheticGuest.PostRawRx"/>.</summary>
    public int RxReserve { get; init; }

    /// <summary>
    /// Protocol features to negotiate beyond QEMU 7.2's vsock set (if the back end offers them), e.g.
    /// <see cref="VhostUser.VhostUserProtocolFeatures.ConfigureMemSlots"/> for ADD_MEM_REG/REM_MEM_REG tests.
    /// </summary>
    public ulong ExtraProtocolFeatures { get; init; }

    internal void Validate()
    {
        if (QueueSize == 0 || (QueueSize & (QueueSize - 1)) != 0 || QueueSize > 32768)
            throw new ArgumentOutOfRangeException(nameof(QueueSize), "queue size must be a power of 2 up to 32768");
        if (RxBufferSize < 64 || RxBufferSize > 1 << 20)
            throw new ArgumentOutOfRangeException(nameof(RxBufferSize));
        if (MaxPacketPayload < 1 || MaxPacketPayload > 1 << 20)
            throw new ArgumentOutOfRangeException(nameof(MaxPacketPayload));
        if (TxFragmentSize < 1)
            throw new ArgumentOutOfRangeException(nameof(TxFragmentSize));
        if (TxLayout == TxLayout.SplitPayload && (MaxPacketPayload + TxFragmentSize - 1) / TxFragmentSize + 1 > QueueSize)
            throw new ArgumentOutOfRangeException(nameof(TxFragmentSize), "a full packet would need more descriptors than the queue has");
        if (RxLayout != RxLayout.SingleDescriptor && QueueSize < 2)
            throw new ArgumentOutOfRangeException(nameof(QueueSize));
        if (BufAlloc == 0)
            throw new ArgumentOutOfRangeException(nameof(BufAlloc));
    }
}
