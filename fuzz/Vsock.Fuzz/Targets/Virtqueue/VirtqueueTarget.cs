using System.Buffers.Binary;
using Vsock.Device.Memory;
using Vsock.Device.Packets;
using Vsock.Device.Virtio;
using Vsock.Models;

namespace Vsock.Fuzz.Targets.Virtqueue;

/// <summary>
/// Descriptor-chain walking (<see cref="SplitQueue"/>) and <see cref="VsockPacket"/> parsing of TX and RX chains over
/// a guest memory the input lays out, driven by a guest that rewrites memory between the device's steps.
///
/// Input:
/// <code>
/// u8 region count (1 + n % 3), then per region: u8 page (gpa = page * 4 KiB), u8 size (1 + n % 8 pages);
///    a region overlapping an earlier one is left out
/// u8 queue: bits 0-3 log2 size (n % 9: 1..256), bit 4 EVENT_IDX, bit 5 INDIRECT_DESC, bit 6 NOTIFY_ON_EMPTY
/// u16 next avail; u32 descriptor table gpa, u32 avail ring gpa, u32 used ring gpa; u32 TX max payload
/// then operations to the end, u8 op % 8:
///   0 guest write   u32 gpa, u8 n, n bytes           4 device: disable, then re-enable notifications
///   1 device: pop a chain, parse it as TX and RX, complete it   5 guest: descriptor u16 i, u64 addr, u32 len, u16 flags, u16 next
///   2 device: pop a chain and undo the pop           6 guest: publish head u16 (ring entry, then avail.idx + 1)
///   3 device: publish used, ask whether to notify    7 guest: set avail.idx u16
/// </code>
///
/// Invariants: each popped chain is what a plain reference walk (visited set) of the same memory finds, its buffers
/// all inside guest memory, none readable after a writable one, its length sums right; a malformed chain is
/// completed with length 0 exactly when its head is valid; TX and RX parsing agree with a byte-stream model (same
/// error, same header, same payload), header setters on TX write nothing and on RX write exactly the header; the
/// device writes nothing but the used ring and the RX chain's header and payload bytes, never outside memory.
/// </summary>
internal sealed unsafe class VirtqueueTarget : IFuzzTarget
{
    private const int Header = VsockConstants.HeaderSize;

    public string Name => "virtqueue";

    public IEnumerable<(string Name, byte[] Input)> Seeds() => VirtqueueSeeds.All();

    public string Run(ReadOnlySpan<byte> input)
    {
        var reader = new FuzzInput(input);
        var regionCount = 1 + reader.U8() % 3;
        var regions = new List<(ulong, ulong)>();
        for (var i = 0; i < regionCount; i++)
            regions.Add((reader.U8() * 0x1000UL, (1UL + (ulong)(reader.U8() % 8)) * 0x1000));
        var queueByte = reader.U8();
        var size = (ushort)(1 << ((queueByte & 0xf) % 9));
        var eventIdx = (queueByte & 0x10) != 0;
        var indirect = (queueByte & 0x20) != 0;
        var nextAvail = reader.U16();
        ulong desc = reader.U32(), avail = reader.U32(), used = reader.U32();
        var maxDataSize = reader.U32();

        using var ram = new FakeGuestMemory(regions);
        SplitQueue queue;
        try
        {
            queue = new SplitQueue(ram.Memory, size, desc, avail, used, eventIdx, indirect, nextAvail)
            {
                NotifyOnEmpty = (queueByte & 0x40) != 0,
            };
        }
        catch (Exception e) when (e is GuestMemoryException or ArgumentException)
        {
            return "ring layout refused";
        }

        var run = new Walk(ram, queue, size, desc, avail, used, indirect, maxDataSize);
        while (!reader.IsEmpty)
            run.Step(ref reader);
        Invariant.Holds(ram.GuardsIntact, "a guard byte next to guest memory changed");
        return run.Summary();
    }

    private sealed class Walk(FakeGuestMemory ram, SplitQueue queue, ushort size, ulong desc, ulong avail, ulong used, bool indirect, uint maxDataSize)
    {
        private readonly byte[][] _snapshot = ram.NewSnapshot();
        private readonly GuestMemory _memory = ram.Memory;
        private int _chains, _malformed, _tx, _rx;

        public string Summary() => $"{_chains} chains ({_tx} TX, {_rx} RX packets), {_malformed} malformed{(queue.IsBroken ? ", ring broken" : "")}";

        public void Step(ref FuzzInput reader)
        {
            switch (reader.U8() % 8)
            {
                case 0:
                    var gpa = reader.U32();
                    ram.GuestWrite(gpa, reader.Bytes(reader.U8()));
                    break;
                case 1:
                    Pop(undo: false);
                    break;
                case 2:
                    Pop(undo: true);
                    break;
                case 3:
                    DeviceStep(() =>
                    {
                        queue.PublishUsed();
                        _ = queue.NeedsNotification();
                    });
                    Invariant.Holds(_memory.ReadUInt16(used + SplitRingLayout.IdxOffset) == queue.NextUsed, "used.idx is not what was published");
                    break;
                case 4:
                    DeviceStep(() =>
                    {
                        queue.DisableNotification();
                        _ = queue.EnableNotification();
                    });
                    break;
                case 5:
                    var index = reader.U16();
                    Span<byte> entry = stackalloc byte[VirtqDescriptor.Size];
                    BinaryPrimitives.WriteUInt64LittleEndian(entry, reader.U64());
                    BinaryPrimitives.WriteUInt32LittleEndian(entry[8..], reader.U32());
                    BinaryPrimitives.WriteUInt16LittleEndian(entry[12..], reader.U16());
                    BinaryPrimitives.WriteUInt16LittleEndian(entry[14..], reader.U16());
                    ram.GuestWrite(desc + (ulong)(index % size) * VirtqDescriptor.Size, entry);
                    break;
                case 6:
                    var head = reader.U16();
                    var idx = _memory.ReadUInt16(avail + SplitRingLayout.IdxOffset);
                    _memory.WriteUInt16(avail + SplitRingLayout.RingOffset + 2UL * (ulong)(idx % size), head);
                    _memory.WriteUInt16(avail + SplitRingLayout.IdxOffset, (ushort)(idx + 1));
                    break;
                default:
                    _memory.WriteUInt16(avail + SplitRingLayout.IdxOffset, reader.U16());
                    break;
            }
        }

        /// <summary>A device operation that may write only the used ring.</summary>
        private void DeviceStep(Action step)
        {
            ram.TakeSnapshot(_snapshot);
            step();
            ram.Allow(_snapshot, used, SplitRingLayout.UsedRingBytes(size));
            Invariant.Holds(ram.Unchanged(_snapshot), "the device wrote guest memory outside the used ring");
        }

        private void Pop(bool undo)
        {
            ram.TakeSnapshot(_snapshot);
            var usedBefore = queue.NextUsed;
            var availBefore = queue.NextAvail;
            var status = queue.TryPop(out var chain, out var error);
            Invariant.Holds(Enum.IsDefined(status) && Enum.IsDefined(error), "an undefined pop status or chain error");
            switch (status)
            {
                case PopStatus.Empty:
                    Invariant.Holds(error == ChainError.None && queue.NextAvail == availBefore, "an empty pop consumed something or named an error");
                    break;
                case PopStatus.Malformed:
                    _malformed++;
                    Invariant.Holds(error != ChainError.None && chain.Buffers.IsEmpty, "a malformed chain without an error, or with buffers");
                    Invariant.Holds(ReferenceWalk(chain.HeadIndex) is null, $"the reference walk accepts a chain the queue calls {error}");
                    if (chain.HeadIndex < size)
                    {
                        Invariant.Holds(queue.NextUsed == (ushort)(usedBefore + 1), "a malformed chain with a valid head was not completed");
                        Invariant.Holds(UsedElement(usedBefore) == (chain.HeadIndex, 0u), "a malformed chain was completed with the wrong id or a length");
                    }
                    else
                    {
                        Invariant.Holds(error == ChainError.HeadIndexOutOfRange && queue.NextUsed == usedBefore, "an invalid head was completed");
                    }
                    break;
                default:
                    _chains++;
                    CheckChain(chain);
                    if (undo)
                    {
                        queue.Rewind(1);
                        Invariant.Holds(queue.NextAvail == availBefore, "Rewind did not give the chain back");
                    }
                    else
                    {
                        var written = Parse(chain);
                        queue.AddUsed(chain.HeadIndex, written);
                        Invariant.Holds(UsedElement(usedBefore) == (chain.HeadIndex, written), "the used element is not what was added");
                    }
                    break;
            }
            ram.Allow(_snapshot, used, SplitRingLayout.UsedRingBytes(size));
            Invariant.Holds(ram.Unchanged(_snapshot), "the device wrote guest memory outside the used ring and the RX chain");
        }

        private void CheckChain(scoped in DescriptorChain chain)
        {
            var expected = ReferenceWalk(chain.HeadIndex);
            Invariant.Holds(expected is not null, "the queue accepted a chain the reference walk rejects");
            Invariant.Holds(chain.Buffers.SequenceEqual(expected!.ToArray()), "the chain's buffers differ from the reference walk");
            ulong readable = 0, writable = 0;
            foreach (var b in chain.Buffers)
            {
                Invariant.Holds(_memory.TryGetHostPointer(b.Address, b.Length, out _), "a chain buffer lies outside guest memory");
                if (b.DeviceWritable)
                    writable += b.Length;
                else
                    readable += b.Length;
            }
            Invariant.Holds(readable == chain.ReadableLength && writable == chain.WritableLength, "the chain's length sums are wrong");
            Invariant.Holds(readable + writable <= uint.MaxValue, "a chain longer than 4 GiB");
        }

        /// <summary>Parses the chain both ways against the model; returns the used length the device reports.</summary>
        private uint Parse(scoped in DescriptorChain chain)
        {
            var buffers = chain.Buffers.ToArray();
            var txError = VsockPacket.TryFromTxChain(_memory, chain, maxDataSize, out var tx);
            var modelTx = PacketModel.Tx(_memory, buffers, maxDataSize, out var header, out var payload);
            Invariant.Holds(txError == modelTx, $"TX parse says {txError}, the model {modelTx}");
            if (txError == VsockPacketError.None)
            {
                _tx++;
                var encoded = new byte[Header];
                header.Write(encoded);
                Invariant.Holds(PacketModel.ReadStream(_memory, buffers, Header) is { } raw && encoded.AsSpan().SequenceEqual(raw),
                    "a vsock header does not survive Read then Write");
                Invariant.Holds(tx.Header.Equals(header) && tx.DataCapacity == header.Len, "the TX header differs from the bytes in the chain");
                var copy = new byte[payload!.Length];
                Invariant.Holds(tx.CopyDataTo(copy) == payload.Length && copy.AsSpan().SequenceEqual(payload), "the TX payload differs from the chain's bytes");
                var copied = tx.CopyDataTo(copy, (uint)payload.Length / 2);
                Invariant.Holds(copied == payload.Length - payload.Length / 2 && copy.AsSpan(0, copied).SequenceEqual(payload.AsSpan(payload.Length / 2)),
                    "a TX payload read from an offset is wrong");
                tx.SetHeader(PacketModel.Pattern);
                tx.FwdCnt = 1;
                Invariant.Holds(tx.Header.FwdCnt == 1 && tx.Header.SrcPort == PacketModel.Pattern.SrcPort, "TX header setters do not update the copy");
                return 0; // checked against the snapshot: nothing written
            }

            var rxError = VsockPacket.TryFromRxChain(_memory, chain, out var rx);
            var modelRx = PacketModel.Rx(_memory, buffers, out var capacity);
            Invariant.Holds(rxError == modelRx, $"RX parse says {rxError}, the model {modelRx}");
            if (rxError != VsockPacketError.None)
                return 0;
            _rx++;
            Invariant.Holds(rx.DataCapacity == capacity && rx.Header.Equals(default(VsockHeader)), "the RX packet's capacity or header copy is wrong");
            var data = new byte[capacity];
            for (var i = 0; i < data.Length; i++)
                data[i] = (byte)(i * 31 + 7);
            Invariant.Holds(rx.WriteData(data) == data.Length, "RX WriteData wrote less than its capacity");
            var sent = PacketModel.Pattern with { Len = capacity };
            rx.SetHeader(sent);
            rx.Op = VsockOp.Rw;
            rx.SetFlag(2);
            var expectedHeader = sent with { Op = VsockOp.Rw, Flags = sent.Flags | 2 };
            Invariant.Holds(rx.Header.Equals(expectedHeader), "RX header setters do not update the copy");

            var stream = Header + (ulong)capacity;
            if (!PacketModel.Overlap(buffers, stream))
            {
                var expected = new byte[stream];
                expectedHeader.Write(expected);
                data.CopyTo(expected, Header);
                Invariant.Holds(PacketModel.ReadStream(_memory, buffers, stream) is { } actual && actual.AsSpan().SequenceEqual(expected),
                    "the RX chain's bytes are not the header and payload written");
            }
            foreach (var (address, length) in PacketModel.Prefix(buffers, stream))
                ram.Allow(_snapshot, address, length);
            return (uint)stream;
        }

        private (uint Id, uint Length) UsedElement(ushort position)
        {
            var gpa = used + SplitRingLayout.RingOffset + (ulong)SplitRingLayout.UsedElementSize * (ulong)(position % size);
            return (_memory.ReadUInt32(gpa), _memory.ReadUInt32(gpa + 4));
        }

        /// <summary>The chain as the model walks it over the snapshot taken before the pop (null if malformed).</summary>
        private List<GuestBuffer>? ReferenceWalk(ushort head) =>
            ChainModel.Walk(_memory, (gpa, entry) => ram.TryRead(_snapshot, gpa, entry), desc, size, indirect, head);
    }
}
