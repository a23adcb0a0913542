using System.Buffers.Binary;
using Vsock.Device.Memory;
using Vsock.Device.Virtio;

namespace Vsock.Models;

/// <summary>Reads the 16-byte descriptor at <paramref name="gpa"/> into <paramref name="entry"/>; false if it is not all in guest memory.</summary>
internal delegate bool ReadDescriptor(ulong gpa, Span<byte> entry);

/// <summary>
/// The split ring's descriptor-chain rules (virtio 1.2, 2.7.5 and 2.7.5.3) written the obvious way, as the oracle
/// <see cref="SplitQueue"/>'s walk is checked against by the randomized tests and the virtqueue fuzz target (one
/// model for both, linked into each): loops found with a visited set, every buffer checked against memory, the
/// spec's numbers written out rather than taken from the code under test.
/// </summary>
internal static unsafe class ChainModel
{
    /// <summary>The buffers of the chain at <paramref name="head"/>, or null if the chain is malformed.</summary>
    /// <param name="read">Where descriptors are read from (live memory, or a snapshot taken before the device looked).</param>
    /// <param name="table">The descriptor table's guest address; it has <paramref name="size"/> entries.</param>
    /// <param name="indirectNegotiated">VIRTIO_F_INDIRECT_DESC was negotiated.</param>
    public static List<GuestBuffer>? Walk(GuestMemory memory, ReadDescriptor read, ulong table, ushort size, bool indirectNegotiated, ushort head)
    {
        if (head >= size)
            return null;
        var buffers = new List<GuestBuffer>();
        var seenWritable = false;
        ulong total = 0;
        uint tableLength = size, index = head;
        var inIndirect = false;
        var visited = new HashSet<uint>();
        Span<byte> entry = stackalloc byte[16];
        while (true)
        {
            if (index >= tableLength || !visited.Add(index) || !read(table + (ulong)index * 16, entry))
                return null;
            var address = BinaryPrimitives.ReadUInt64LittleEndian(entry);
            var length = BinaryPrimitives.ReadUInt32LittleEndian(entry[8..]);
            var flags = BinaryPrimitives.ReadUInt16LittleEndian(entry[12..]);
            var next = BinaryPrimitives.ReadUInt16LittleEndian(entry[14..]);
            if ((flags & DescriptorFlags.Indirect) != 0)
            {
                // One level only, not chained on, a whole number of descriptors, at most the largest queue's worth.
                if (inIndirect || !indirectNegotiated || (flags & DescriptorFlags.Next) != 0)
                    return null;
                if (length == 0 || length % 16 != 0 || length > 65536 || !memory.TryGetHostPointer(address, length, out _))
                    return null;
                inIndirect = true;
                table = address;
                tableLength = length / 16;
                visited.Clear();
                index = 0;
                continue;
            }
            var writable = (flags & DescriptorFlags.Write) != 0;
            if (!writable && seenWritable)
                return null; // readable buffers come before writable ones
            seenWritable |= writable;
            if (!memory.TryGetHostPointer(address, length, out _))
                return null;
            total += length;
            if (total > uint.MaxValue)
                return null;
            buffers.Add(new GuestBuffer(address, length, writable));
            if ((flags & DescriptorFlags.Next) == 0)
                return buffers;
            index = next;
        }
    }
}
