using Vsock.Device.Memory;
using Vsock.Device.Tests.TestSupport;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.Virtio;

public sealed class DescriptorChainValidationTests : IDisposable
{
    private const ulong RamSize = 0x10_0000;
    // Two adjacent regions: a buffer may touch both, but must lie in one (we need one host pointer per buffer).
    private readonly NativeGuestMemory _ram = new((0, RamSize), (RamSize, 0x1_0000));
    private readonly MockDriver _driver;

    public DescriptorChainValidationTests() => _driver = new MockDriver(_ram.Memory, 16);

    public void Dispose()
    {
        Assert.True(_ram.GuardsIntact);
        _ram.Dispose();
    }

    private void AssertMalformed(SplitQueue queue, ChainError expected, ushort head)
    {
        var usedBefore = queue.NextUsed;
        Assert.Equal(PopStatus.Malformed, queue.TryPop(out var chain, out var error));
        Assert.Equal(expected, error);
        Assert.Equal(head, chain.HeadIndex);
        Assert.True(chain.Buffers.IsEmpty);
        // Given back with used length 0 so the guest can reuse its descriptors.
        Assert.Equal((ushort)(usedBefore + 1), queue.NextUsed);
        Assert.Equal((head, 0u), _driver.UsedElement(usedBefore));
    }

    [Fact]
    public void Head_index_out_of_range_is_skipped_without_a_used_element()
    {
        var queue = _driver.CreateQueue();
        _driver.Publish(16);
        var good = _driver.AddChain(new GuestBuffer(_driver.Alloc(8), 8, false));

        Assert.Equal(PopStatus.Malformed, queue.TryPop(out var chain, out var error));
        Assert.Equal(ChainError.HeadIndexOutOfRange, error);
        Assert.Equal(16, chain.HeadIndex);
        Assert.Equal(0, queue.NextUsed);
        Assert.Equal(1, queue.NextAvail);

        Assert.Equal(PopStatus.Chain, queue.TryPop(out var next, out _));
        Assert.Equal(good, next.HeadIndex);
    }

    [Fact]
    public void Malformed_chain_is_completed_with_length_zero_and_published_with_the_batch()
    {
        var queue = _driver.CreateQueue();
        _driver.WriteDescriptor(5, 0x2000, 8, DescriptorFlags.Next, 99);
        _driver.Publish(5);

        AssertMalformed(queue, ChainError.NextIndexOutOfRange, 5);
        Assert.Equal(0, queue.Rewindable);
        queue.PublishUsed();
        Assert.Equal(1, _driver.UsedIdx);
    }

    [Fact]
    public void Self_loop_is_too_long()
    {
        var queue = _driver.CreateQueue();
        _driver.WriteDescriptor(3, 0x2000, 8, DescriptorFlags.Next, 3);
        _driver.Publish(3);
        AssertMalformed(queue, ChainError.ChainTooLong, 3);
    }

    [Fact]
    public void Two_descriptor_cycle_is_too_long()
    {
        var queue = _driver.CreateQueue();
        _driver.WriteDescriptor(0, 0x2000, 8, DescriptorFlags.Next, 1);
        _driver.WriteDescriptor(1, 0x2000, 8, DescriptorFlags.Next, 0);
        _driver.Publish(0);
        AssertMalformed(queue, ChainError.ChainTooLong, 0);
    }

    [Fact]
    public void Chain_as_long_as_the_queue_is_valid()
    {
        var queue = _driver.CreateQueue();
        var buffers = Enumerable.Range(0, 16).Select(i => new GuestBuffer(0x2000 + (ulong)i * 16, 16, i >= 8)).ToArray();
        _driver.AddChain(buffers);
        Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out _));
        Assert.Equal(buffers, chain.Buffers.ToArray());
    }

    [Fact]
    public void Readable_after_writable_is_rejected()
    {
        var queue = _driver.CreateQueue();
        var head = _driver.AddChain(new(0x2000, 8, false), new(0x3000, 8, true), new(0x4000, 8, false));
        AssertMalformed(queue, ChainError.ReadableAfterWritable, head);
    }

    [Theory]
    [InlineData(RamSize + 0x1_0000 - 8, 9u)]              // runs past the end of all memory
    [InlineData(RamSize - 8, 16u)]                         // straddles two regions
    [InlineData(0x40_0000UL, 0u)]                           // empty, but not inside memory either
    [InlineData(0xFFFF_FFFF_FFFF_FFF0, 0x20u)]            // address + length wraps 2^64
    public void Buffer_outside_guest_memory_is_rejected(ulong address, uint length)
    {
        var queue = _driver.CreateQueue();
        var head = _driver.AddChain(new(0x2000, 8, false), new(address, length, true));
        AssertMalformed(queue, ChainError.AddressOutOfRange, head);
    }

    [Fact]
    public void Buffers_at_the_edges_of_memory_are_valid()
    {
        var queue = _driver.CreateQueue();
        GuestBuffer[] buffers = [new(RamSize - 8, 8, false), new(RamSize, 0x1_0000, false), new(RamSize + 0x1_0000, 0, true)];
        _driver.AddChain(buffers);
        Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out _));
        Assert.Equal(buffers, chain.Buffers.ToArray());
    }

    [Fact]
    public void Total_length_above_4_GiB_overflows()
    {
        // An address-only region (never dereferenced by the walker) gives room for huge buffers.
        var memory = _ram.Memory.With(new MemoryRegion(0x1_0000_0000, 0x1_0000_0000, 0x9000_0000_0000, 0x1000, owner: null));
        var queue = new SplitQueue(memory, 16, _driver.DescTable, _driver.AvailRing, _driver.UsedRing, false, false);

        var head = _driver.AddChain(new(0x1_0000_0000, 0x8000_0000, false), new(0x1_8000_0000, 0x8000_0000, true));
        AssertMalformed(queue, ChainError.TotalLengthOverflow, head);

        GuestBuffer[] largest = [new(0x1_0000_0000, 0xFFFF_FFF0, false), new(0x1_0000_0000, 0xF, true)];
        _driver.AddChain(largest);
        Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out _));
        Assert.Equal((ulong)uint.MaxValue, chain.ReadableLength + chain.WritableLength);
    }

    [Fact]
    public void Indirect_table_is_expanded()
    {
        var queue = _driver.CreateQueue(indirect: true);
        var table = _driver.Alloc(3 * 16, 16);
        GuestBuffer[] entries = [new(0x2000, 44, false), new(0x3000, 100, false), new(0x4000, 200, true)];
        var head = _driver.AddIndirectChain(table, entries);

        Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out _));
        Assert.Equal(head, chain.HeadIndex);
        Assert.Equal(entries, chain.Buffers.ToArray());
        Assert.Equal(144UL, chain.ReadableLength);
        Assert.Equal(200UL, chain.WritableLength);
    }

    [Fact]
    public void Direct_descriptors_may_precede_the_indirect_one()
    {
        var queue = _driver.CreateQueue(indirect: true);
        var table = _driver.Alloc(2 * 16, 16);
        GuestBuffer[] direct = [new(0x1000, 44, false), new(0x1100, 10, false)];
        GuestBuffer[] entries = [new(0x2000, 20, false), new(0x4000, 200, true)];
        _driver.AddIndirectChain(table, entries, direct);

        Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out _));
        Assert.Equal([.. direct, .. entries], chain.Buffers.ToArray());
    }

    [Fact]
    public void Readable_indirect_entry_after_writable_direct_descriptor_is_rejected()
    {
        var queue = _driver.CreateQueue(indirect: true);
        var table = _driver.Alloc(16, 16);
        var head = _driver.AddIndirectChain(table, [new(0x2000, 20, false)], new GuestBuffer(0x1000, 44, true));
        AssertMalformed(queue, ChainError.ReadableAfterWritable, head);
    }

    [Fact]
    public void Write_flag_on_the_table_descriptor_is_ignored()
    {
        var queue = _driver.CreateQueue(indirect: true);
        var table = _driver.Alloc(16, 16);
        _driver.WriteDescriptorAt(table, 0x2000, 20, 0);
        _driver.WriteDescriptor(0, table, 16, DescriptorFlags.Indirect | DescriptorFlags.Write);
        _driver.Publish(0);
        Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out _));
        Assert.Equal([new GuestBuffer(0x2000, 20, false)], chain.Buffers.ToArray());
    }

    [Fact]
    public void Largest_indirect_table_is_accepted()
    {
        var queue = _driver.CreateQueue(indirect: true);
        var table = _driver.Alloc(65536, 16);
        var entries = Enumerable.Range(0, SplitQueue.MaxIndirectEntries).Select(i => new GuestBuffer(0x2000, 1, i % 2 == 1 && i > 4000)).ToArray();
        // Readable first, then writable.
        entries = [.. entries.Where(e => !e.DeviceWritable), .. entries.Where(e => e.DeviceWritable)];
        _driver.AddIndirectChain(table, entries, new GuestBuffer(0x1000, 44, false));

        Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out _));
        Assert.Equal(SplitQueue.MaxIndirectEntries + 1, chain.Buffers.Length);
        Assert.Equal((ulong)SplitQueue.MaxIndirectEntries + 44, chain.ReadableLength + chain.WritableLength);
    }

    [Fact]
    public void Indirect_without_the_feature_is_rejected()
    {
        var queue = _driver.CreateQueue(indirect: false);
        var table = _driver.Alloc(16, 16);
        var head = _driver.AddIndirectChain(table, [new(0x2000, 20, false)]);
        AssertMalformed(queue, ChainError.IndirectNotNegotiated, head);
    }

    [Fact]
    public void Nested_indirect_is_rejected()
    {
        var queue = _driver.CreateQueue(indirect: true);
        var inner = _driver.Alloc(16, 16);
        _driver.WriteDescriptorAt(inner, 0x2000, 20, 0);
        var outer = _driver.Alloc(32, 16);
        _driver.WriteDescriptorAt(outer, 0x2000, 20, DescriptorFlags.Next, 1);
        _driver.WriteDescriptorAt(outer + 16, inner, 16, DescriptorFlags.Indirect);
        _driver.WriteDescriptor(0, outer, 32, DescriptorFlags.Indirect);
        _driver.Publish(0);
        AssertMalformed(queue, ChainError.IndirectNested, 0);
    }

    [Fact]
    public void Indirect_with_next_is_rejected()
    {
        var queue = _driver.CreateQueue(indirect: true);
        var table = _driver.Alloc(16, 16);
        _driver.WriteDescriptorAt(table, 0x2000, 20, 0);
        _driver.WriteDescriptor(0, table, 16, DescriptorFlags.Indirect | DescriptorFlags.Next, 1);
        _driver.WriteDescriptor(1, 0x3000, 20, 0);
        _driver.Publish(0);
        AssertMalformed(queue, ChainError.IndirectWithNext, 0);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(24u)]
    [InlineData(65536u + 16)]
    public void Indirect_table_with_a_bad_length_is_rejected(uint length)
    {
        var queue = _driver.CreateQueue(indirect: true);
        _driver.WriteDescriptor(0, _driver.Alloc(65536 + 16, 16), length, DescriptorFlags.Indirect);
        _driver.Publish(0);
        AssertMalformed(queue, ChainError.IndirectTableBadLength, 0);
    }

    [Theory]
    [InlineData(RamSize + 0x1_0000 - 16, 32u)]
    [InlineData(RamSize - 16, 32u)]
    [InlineData(0xFFFF_FFFF_FFFF_FFF0, 32u)]
    public void Indirect_table_outside_guest_memory_is_rejected(ulong address, uint length)
    {
        var queue = _driver.CreateQueue(indirect: true);
        _driver.WriteDescriptor(0, address, length, DescriptorFlags.Indirect);
        _driver.Publish(0);
        AssertMalformed(queue, ChainError.AddressOutOfRange, 0);
    }

    [Fact]
    public void Buffer_named_by_an_indirect_entry_must_be_inside_memory()
    {
        var queue = _driver.CreateQueue(indirect: true);
        var table = _driver.Alloc(16, 16);
        var head = _driver.AddIndirectChain(table, [new(0x40_0000, 20, false)]);
        AssertMalformed(queue, ChainError.AddressOutOfRange, head);
    }

    [Fact]
    public void Next_index_beyond_the_indirect_table_is_rejected()
    {
        var queue = _driver.CreateQueue(indirect: true);
        var table = _driver.Alloc(32, 16);
        _driver.WriteDescriptorAt(table, 0x2000, 20, DescriptorFlags.Next, 1);
        _driver.WriteDescriptorAt(table + 16, 0x2000, 20, DescriptorFlags.Next, 2);
        _driver.WriteDescriptor(0, table, 32, DescriptorFlags.Indirect);
        _driver.Publish(0);
        AssertMalformed(queue, ChainError.NextIndexOutOfRange, 0);
    }

    [Fact]
    public void Loop_inside_an_indirect_table_is_too_long()
    {
        var queue = _driver.CreateQueue(indirect: true);
        var table = _driver.Alloc(32, 16);
        _driver.WriteDescriptorAt(table, 0x2000, 20, DescriptorFlags.Next, 1);
        _driver.WriteDescriptorAt(table + 16, 0x2000, 20, DescriptorFlags.Next, 0);
        _driver.WriteDescriptor(0, table, 32, DescriptorFlags.Indirect);
        _driver.Publish(0);
        AssertMalformed(queue, ChainError.ChainTooLong, 0);
    }

    [Fact]
    public void Queue_keeps_working_after_malformed_chains()
    {
        var queue = _driver.CreateQueue();
        _driver.WriteDescriptor(0, 0x2000, 8, DescriptorFlags.Next, 0);
        _driver.Publish(0);
        _driver.Publish(20);
        _driver.WriteDescriptor(1, 0x2000, 8, 0);
        _driver.Publish(1);

        Assert.Equal(PopStatus.Malformed, queue.TryPop(out _, out _));
        Assert.Equal(PopStatus.Malformed, queue.TryPop(out _, out _));
        Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out _));
        Assert.Equal(1, chain.HeadIndex);
        queue.AddUsed(chain.HeadIndex, 8);
        queue.PublishUsed();
        Assert.Equal(2, _driver.UsedIdx);
        Assert.Equal((0u, 0u), _driver.UsedElement(0));
        Assert.Equal((1u, 8u), _driver.UsedElement(1));
    }
}
