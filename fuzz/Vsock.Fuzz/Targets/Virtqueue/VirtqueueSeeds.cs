using Vsock.Device.Packets;
using Vsock.Device.Virtio;

namespace Vsock.Fuzz.Targets.Virtqueue;

/// <summary>
/// Seeds: a 16-entry ring at gpa 0 (descriptors 0x0, avail 0x100, used 0x200) in 32 KiB of RAM, data from 0x1000;
/// Linux-style TX chains (header and payload in separate descriptors, or together, or through an indirect table),
/// RX buffers, EVENT_IDX across the 16-bit wrap, a second region, and the usual malformed chains.
/// </summary>
internal static class VirtqueueSeeds
{
    private const int Next = DescriptorFlags.Next, Write = DescriptorFlags.Write, Indirect = DescriptorFlags.Indirect;
    private const int EventIdx = 0x10, IndirectDesc = 0x20, NotifyOnEmpty = 0x40;

    public static IEnumerable<(string, byte[])> All()
    {
        yield return ("linux-tx-header-and-payload", new Builder()
            .Write(0x1000, TxHeader(VsockOp.Rw, 5)).Write(0x2000, "hello"u8.ToArray())
            .Desc(0, 0x1000, 44, Next, 1).Desc(1, 0x2000, 5, 0, 0).Publish(0).Pop().Notify().ToArray());
        yield return ("linux-tx-request-one-descriptor", new Builder()
            .Write(0x1000, TxHeader(VsockOp.Request, 0))
            .Desc(3, 0x1000, 44, 0, 0).Publish(3).Pop()
            .Write(0x1100, [.. TxHeader(VsockOp.Rw, 3), .. "abc"u8.ToArray()])
            .Desc(4, 0x1100, 47, 0, 0).Publish(4).Pop().Notify().ToArray());
        yield return ("linux-rx-buffers-event-idx", new Builder(queue: 4 | EventIdx)
            .Desc(0, 0x1000, 0x1000, Write, 0).Desc(1, 0x2000, 0x1000, Write, 0)
            .Publish(0).Publish(1).Pop().Notify().Pop().Notify().Rearm().ToArray());
        yield return ("indirect-tx", new Builder(queue: 4 | IndirectDesc)
            .Write(0x1000, TxHeader(VsockOp.Rw, 4)).Write(0x2000, "ping"u8.ToArray())
            .Write(0x3000, Descriptor(0x1000, 44, Next, 1)).Write(0x3010, Descriptor(0x2000, 4, 0, 0))
            .Desc(0, 0x3000, 32, Indirect, 0).Publish(0).Pop().Notify().ToArray());
        yield return ("event-idx-wrap", new Builder(queue: 4 | EventIdx | NotifyOnEmpty, nextAvail: 65534)
            .AvailIdx(65534)
            .Desc(0, 0x1000, 0x100, Write, 0).Desc(1, 0x1100, 0x100, Write, 0).Desc(2, 0x1200, 0x100, Write, 0)
            .Publish(0).Publish(1).Publish(2).Pop().Pop().Notify().Pop().Notify().Rearm().ToArray());
        yield return ("two-regions", new Builder(regions: [(0, 7), (0x10, 0)])
            .Write(0x1000, TxHeader(VsockOp.Rw, 16)).Write(0x10000, "second region..."u8.ToArray())
            .Desc(0, 0x1000, 44, Next, 1).Desc(1, 0x10000, 16, 0, 0).Publish(0).Pop().Notify().ToArray());
        yield return ("malformed-chains", new Builder(queue: 4 | IndirectDesc)
            .Desc(0, 0x1000, 44, Next, 0).Publish(0).Pop() // loop
            .Desc(1, 0x1000, 44, Next, 99).Publish(1).Pop() // next out of range
            .Desc(2, 0x1000, 44, Write | Next, 3).Desc(3, 0x2000, 8, 0, 0).Publish(2).Pop() // readable after writable
            .Desc(4, 0x3000, 24, Indirect, 0).Publish(4).Pop() // indirect table of 1.5 entries
            .Desc(5, 0xfff0_0000, 44, 0, 0).Publish(5).Pop() // outside memory
            .Publish(40).Pop().Notify().ToArray()); // head out of range
        yield return ("undo-and-rearm", new Builder(queue: 4)
            .Desc(0, 0x1000, 44, Write | Next, 1).Desc(1, 0x1100, 200, Write, 0)
            .Publish(0).Undo().Rearm().Pop().Notify().ToArray());
    }

    private static byte[] TxHeader(ushort op, uint len)
    {
        var raw = new byte[VsockConstants.HeaderSize];
        new VsockHeader
        {
            SrcCid = 3, DstCid = VsockConstants.HostCid, SrcPort = 1234, DstPort = 5000, Len = len,
            Type = VsockType.Stream, Op = op, BufAlloc = 262144, FwdCnt = 0,
        }.Write(raw);
        return raw;
    }

    private static byte[] Descriptor(ulong address, uint length, int flags, int next) =>
        new FuzzInputWriter().U64(address).U32(length).U16(flags).U16(next).ToArray();

    private sealed class Builder
    {
        private readonly FuzzInputWriter _w = new();

        /// <param name="regions">(page, size byte): gpa = page * 4 KiB, size = 1 + n % 8 pages.</param>
        public Builder((int Page, int Size)[]? regions = null, int queue = 4, int nextAvail = 0, uint maxData = 65536)
        {
            regions ??= [(0, 7)];
            _w.U8(regions.Length - 1);
            foreach (var (page, size) in regions)
                _w.U8(page).U8(size);
            _w.U8(queue).U16(nextAvail).U32(0).U32(0x100).U32(0x200).U32(maxData);
        }

        public Builder Write(uint gpa, byte[] bytes)
        {
            for (var done = 0; done < bytes.Length; done += 255)
            {
                var piece = bytes.AsSpan(done, Math.Min(255, bytes.Length - done));
                _w.U8(0).U32(gpa + (uint)done).U8(piece.Length).Bytes(piece);
            }
            return this;
        }

        public Builder Pop() => Op(1);
        public Builder Undo() => Op(2);
        public Builder Notify() => Op(3);
        public Builder Rearm() => Op(4);

        public Builder Desc(int index, ulong address, uint length, int flags, int next)
        {
            _w.U8(5).U16(index).U64(address).U32(length).U16(flags).U16(next);
            return this;
        }

        public Builder Publish(int head)
        {
            _w.U8(6).U16(head);
            return this;
        }

        public Builder AvailIdx(int value)
        {
            _w.U8(7).U16(value);
            return this;
        }

        public byte[] ToArray() => _w.ToArray();

        private Builder Op(int op)
        {
            _w.U8(op);
            return this;
        }
    }
}
