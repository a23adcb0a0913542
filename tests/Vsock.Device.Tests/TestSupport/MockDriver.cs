using System.Buffers.Binary;
using Vsock.Device.Memory;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.TestSupport;

/// <summary>
/// Plays the guest driver of one split virtqueue in fake guest memory, like rust-vmm's <c>MockSplitQueue</c>:
/// writes descriptors, publishes chains on the avail ring, and reads back what the device put in the used ring.
/// Layout from <paramref name="baseGpa"/>: descriptor table, avail ring, used ring (each aligned), then a data
/// area that <see cref="Alloc"/> hands out.
/// </summary>
internal sealed class MockDriver
{
    private readonly GuestMemory _memory;
    private ushort _nextDescriptor;
    private ulong _nextData;

    public MockDriver(GuestMemory memory, ushort size, ulong baseGpa = 0)
    {
        _memory = memory;
        Size = size;
        DescTable = baseGpa;
        AvailRing = DescTable + SplitRingLayout.DescriptorTableBytes(size);
        UsedRing = AlignUp(AvailRing + SplitRingLayout.AvailRingBytes(size), 4);
        DataStart = AlignUp(UsedRing + SplitRingLayout.UsedRingBytes(size), 64);
        _nextData = DataStart;
    }

    public ushort Size { get; }
    public ulong DescTable { get; }
    public ulong AvailRing { get; }
    public ulong UsedRing { get; }
    public ulong DataStart { get; }

    public SplitQueue CreateQueue(bool eventIdx = false, bool indirect = false, ushort nextAvail = 0) =>
        new(_memory, Size, DescTable, AvailRing, UsedRing, eventIdx, indirect, nextAvail);

    /// <summary>Bump-allocates <paramref name="length"/> bytes of the data area.</summary>
    public ulong Alloc(uint length, uint alignment = 8)
    {
        var address = AlignUp(_nextData, alignment);
        _nextData = address + length;
        return address;
    }

    public void WriteDescriptor(ushort index, ulong address, uint length, ushort flags, ushort next = 0) =>
        WriteDescriptorAt(DescTable + (ulong)index * VirtqDescriptor.Size, address, length, flags, next);

    /// <summary>Writes one descriptor anywhere (an indirect table entry).</summary>
    public void WriteDescriptorAt(ulong gpa, ulong address, uint length, ushort flags, ushort next = 0)
    {
        var entry = _memory.GetSpan(gpa, VirtqDescriptor.Size);
        BinaryPrimitives.WriteUInt64LittleEndian(entry, address);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[8..], length);
        BinaryPrimitives.WriteUInt16LittleEndian(entry[12..], flags);
        BinaryPrimitives.WriteUInt16LittleEndian(entry[14..], next);
    }

    /// <summary>Writes a linked chain into free descriptor slots (round robin) and publishes its head.</summary>
    public ushort AddChain(params GuestBuffer[] buffers)
    {
        var head = WriteChain(buffers);
        Publish(head);
        return head;
    }

    /// <summary>Writes a linked chain into free descriptor slots without publishing it.</summary>
    public ushort WriteChain(params GuestBuffer[] buffers)
    {
        if (buffers.Length == 0 || buffers.Length > Size)
            throw new ArgumentException("a chain needs 1..Size buffers");
        var indices = new ushort[buffers.Length];
        for (var i = 0; i < indices.Length; i++)
            indices[i] = TakeDescriptor();
        for (var i = 0; i < buffers.Length; i++)
        {
            var last = i == buffers.Length - 1;
            var flags = (ushort)((buffers[i].DeviceWritable ? DescriptorFlags.Write : 0) | (last ? 0 : DescriptorFlags.Next));
            WriteDescriptor(indices[i], buffers[i].Address, buffers[i].Length, flags, last ? (ushort)0 : indices[i + 1]);
        }
        return indices[0];
    }

    /// <summary>
    /// Writes <paramref name="entries"/> as an indirect table at <paramref name="tableGpa"/>, preceded by the
    /// direct descriptors <paramref name="direct"/>, and publishes the chain.
    /// </summary>
    public ushort AddIndirectChain(ulong tableGpa, GuestBuffer[] entries, params GuestBuffer[] direct)
    {
        for (var i = 0; i < entries.Length; i++)
        {
            var last = i == entries.Length - 1;
            var flags = (ushort)((entries[i].DeviceWritable ? DescriptorFlags.Write : 0) | (last ? 0 : DescriptorFlags.Next));
            WriteDescriptorAt(tableGpa + (ulong)i * VirtqDescriptor.Size, entries[i].Address, entries[i].Length, flags, last ? (ushort)0 : (ushort)(i + 1));
        }
        var tableDescriptor = TakeDescriptor();
        WriteDescriptor(tableDescriptor, tableGpa, (uint)(entries.Length * VirtqDescriptor.Size), DescriptorFlags.Indirect);
        var head = tableDescriptor;
        for (var i = direct.Length - 1; i >= 0; i--)
        {
            var index = TakeDescriptor();
            WriteDescriptor(index, direct[i].Address, direct[i].Length,
                (ushort)((direct[i].DeviceWritable ? DescriptorFlags.Write : 0) | DescriptorFlags.Next), head);
            head = index;
        }
        Publish(head);
        return head;
    }

    /// <summary>Puts <paramref name="head"/> in the next avail slot, then bumps avail.idx (the driver's order).</summary>
    public void Publish(ushort head)
    {
        var idx = AvailIdx;
        _memory.WriteUInt16(AvailRing + SplitRingLayout.RingOffset + 2UL * (ulong)(idx % Size), head);
        AvailIdx = (ushort)(idx + 1);
    }

    public ushort AvailIdx
    {
        get => _memory.ReadUInt16(AvailRing + SplitRingLayout.IdxOffset);
        set => _memory.WriteUInt16(AvailRing + SplitRingLayout.IdxOffset, value);
    }

    public ushort AvailFlags
    {
        get => _memory.ReadUInt16(AvailRing + SplitRingLayout.FlagsOffset);
        set => _memory.WriteUInt16(AvailRing + SplitRingLayout.FlagsOffset, value);
    }

    public ushort UsedEvent
    {
        get => _memory.ReadUInt16(AvailRing + SplitRingLayout.UsedEventOffset(Size));
        set => _memory.WriteUInt16(AvailRing + SplitRingLayout.UsedEventOffset(Size), value);
    }

    public ushort UsedIdx
    {
        get => _memory.ReadUInt16(UsedRing + SplitRingLayout.IdxOffset);
        set => _memory.WriteUInt16(UsedRing + SplitRingLayout.IdxOffset, value);
    }

    public ushort UsedFlags => _memory.ReadUInt16(UsedRing + SplitRingLayout.FlagsOffset);

    public ushort AvailEvent => _memory.ReadUInt16(UsedRing + SplitRingLayout.AvailEventOffset(Size));

    /// <summary>The used element at free-running position <paramref name="position"/>.</summary>
    public (uint Id, uint Length) UsedElement(ushort position)
    {
        var gpa = UsedRing + SplitRingLayout.RingOffset + (ulong)SplitRingLayout.UsedElementSize * (ulong)(position % Size);
        return (_memory.ReadUInt32(gpa), _memory.ReadUInt32(gpa + 4));
    }

    private ushort TakeDescriptor()
    {
        var index = _nextDescriptor;
        _nextDescriptor = (ushort)((_nextDescriptor + 1) % Size);
        return index;
    }

    private static ulong AlignUp(ulong value, ulong alignment) => (value + alignment - 1) / alignment * alignment;
}
