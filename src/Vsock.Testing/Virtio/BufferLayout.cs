namespace Vsock.Testing.Virtio;

/// <summary>
/// Where the guest's packet buffers live in its RAM. Every buffer belongs to a descriptor index
/// (the head of the chain that posts it), so no bookkeeping beyond the ring's own is needed:
/// RX header/data/indirect-table areas and one TX slot (header, then payload) per index.
/// </summary>
internal sealed class BufferLayout
{
    public const int RxHeaderStride = 64;
    public const int IndirectTableSize = 2 * DriverQueue.DescriptorSize;

    public BufferLayout(GuestRam ram, SyntheticGuestOptions options)
    {
        var n = (ulong)options.QueueSize;
        RxBufferSize = options.RxBufferSize;
        if (options.RxLayout != RxLayout.SingleDescriptor)
            RxHeaderBase = ram.Allocate(n * RxHeaderStride, 64);
        if (options.RxLayout == RxLayout.Indirect)
            IndirectBase = ram.Allocate(n * IndirectTableSize, 16);
        RxDataBase = ram.Allocate(n * (ulong)options.RxBufferSize, 4096);
        TxSlotSize = (ulong)((Packets.VsockHeader.Size + options.MaxPacketPayload + 63) & ~63);
        TxSlotBase = ram.Allocate(n * TxSlotSize, 4096);
    }

    public int RxBufferSize { get; }
    public ulong RxHeaderBase { get; }
    public ulong IndirectBase { get; }
    public ulong RxDataBase { get; }
    public ulong TxSlotBase { get; }
    public ulong TxSlotSize { get; }

    public ulong RxHeader(ushort index) => RxHeaderBase + index * (ulong)RxHeaderStride;
    public ulong RxData(ushort index) => RxDataBase + index * (ulong)RxBufferSize;
    public ulong IndirectTable(ushort index) => IndirectBase + index * (ulong)IndirectTableSize;
    public ulong TxSlot(ushort index) => TxSlotBase + index * TxSlotSize;
}
