using Vsock.Device.Tests.TestSupport;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.Virtio;

public sealed class SplitQueuePopTests : IDisposable
{
    private readonly NativeGuestMemory _ram = new(0x10_0000);
    private readonly MockDriver _driver;

    public SplitQueuePopTests() => _driver = new MockDriver(_ram.Memory, 16);

    public void Dispose()
    {
        Assert.True(_ram.GuardsIntact);
        _ram.Dispose();
    }

    [Fact]
    public void Empty_ring_pops_nothing()
    {
        var queue = _driver.CreateQueue();
        Assert.Equal(0, queue.PendingCount());
        Assert.Equal(PopStatus.Empty, queue.TryPop(out _, out var error));
        Assert.Equal(ChainError.None, error);
        Assert.Equal(0, queue.NextAvail);
    }

    [Fact]
    public void Pops_a_chain_with_its_buffers_and_lengths()
    {
        var queue = _driver.CreateQueue();
        var a = _driver.Alloc(44);
        var b = _driver.Alloc(100);
        var c = _driver.Alloc(4096);
        var head = _driver.AddChain(new(a, 44, false), new(b, 100, false), new(c, 4096, true));

        Assert.Equal(1, queue.PendingCount());
        Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out var error));
        Assert.Equal(ChainError.None, error);
        Assert.Equal(head, chain.HeadIndex);
        Assert.Equal([new(a, 44, false), new(b, 100, false), new(c, 4096, true)], chain.Buffers.ToArray());
        Assert.Equal(144UL, chain.ReadableLength);
        Assert.Equal(4096UL, chain.WritableLength);
        Assert.Equal(1, queue.NextAvail);
        Assert.Equal(0, queue.PendingCount());
        Assert.Equal(PopStatus.Empty, queue.TryPop(out _, out _));
    }

    [Fact]
    public void Pops_chains_in_avail_order()
    {
        var queue = _driver.CreateQueue();
        var heads = Enumerable.Range(0, 5).Select(i => _driver.AddChain(new GuestBuffer(_driver.Alloc(8), (uint)i + 1, false))).ToList();

        Assert.Equal(5, queue.PendingCount());
        foreach (var (head, i) in heads.Select((h, i) => (h, i)))
        {
            Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out _));
            Assert.Equal(head, chain.HeadIndex);
            Assert.Equal((ulong)i + 1, chain.ReadableLength);
        }
        Assert.Equal(PopStatus.Empty, queue.TryPop(out _, out _));
    }

    [Fact]
    public void Used_elements_become_visible_only_when_published()
    {
        var queue = _driver.CreateQueue();
        var head = _driver.AddChain(new GuestBuffer(_driver.Alloc(64), 64, true));
        Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out _));

        queue.AddUsed(chain.HeadIndex, 60);
        Assert.Equal(1, queue.NextUsed);
        Assert.Equal(0, _driver.UsedIdx);
        Assert.Equal((head, 60u), _driver.UsedElement(0));

        queue.PublishUsed();
        Assert.Equal(1, _driver.UsedIdx);
    }

    [Fact]
    public void Publishes_a_batch_with_one_index_store()
    {
        var queue = _driver.CreateQueue();
        for (var i = 0; i < 3; i++)
            _driver.AddChain(new GuestBuffer(_driver.Alloc(8), 8, false));
        var heads = new List<ushort>();
        while (queue.TryPop(out var chain, out _) == PopStatus.Chain)
        {
            heads.Add(chain.HeadIndex);
            queue.AddUsed(chain.HeadIndex, 0);
        }
        Assert.Equal(0, _driver.UsedIdx);
        queue.PublishUsed();
        Assert.Equal(3, _driver.UsedIdx);
        for (var i = 0; i < 3; i++)
            Assert.Equal((heads[i], 0u), _driver.UsedElement((ushort)i));
    }

    [Fact]
    public void AddUsed_rejects_a_head_outside_the_queue()
    {
        var queue = _driver.CreateQueue();
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.AddUsed(16, 0));
    }

    [Fact]
    public void Rewind_returns_the_chains_to_the_ring()
    {
        var queue = _driver.CreateQueue();
        var first = _driver.AddChain(new GuestBuffer(_driver.Alloc(64), 64, true));
        _driver.AddChain(new GuestBuffer(_driver.Alloc(64), 64, true));
        Assert.Equal(PopStatus.Chain, queue.TryPop(out _, out _));
        Assert.Equal(PopStatus.Chain, queue.TryPop(out _, out _));
        Assert.Equal(2, queue.Rewindable);
        queue.Rewind(2);
        Assert.Equal(0, queue.NextAvail);
        Assert.Equal(2, queue.PendingCount());
        Assert.Equal(PopStatus.Chain, queue.TryPop(out var again, out _));
        Assert.Equal(first, again.HeadIndex);
    }

    [Fact]
    public void Rewind_is_refused_past_a_completed_chain()
    {
        var queue = _driver.CreateQueue();
        Assert.Throws<InvalidOperationException>(() => queue.Rewind(1));

        _driver.AddChain(new GuestBuffer(_driver.Alloc(64), 64, true));
        _driver.AddChain(new GuestBuffer(_driver.Alloc(64), 64, true));
        Assert.Equal(PopStatus.Chain, queue.TryPop(out _, out _));
        queue.Rewind(1);
        Assert.Throws<InvalidOperationException>(() => queue.Rewind(1));

        Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out _));
        queue.AddUsed(chain.HeadIndex, 0);
        Assert.Throws<InvalidOperationException>(() => queue.Rewind(1));

        Assert.Equal(PopStatus.Chain, queue.TryPop(out _, out _));
        Assert.Equal(1, queue.Rewindable);
        Assert.Equal(PopStatus.Empty, queue.TryPop(out _, out _));
        queue.Rewind(1);
        Assert.Equal(1, queue.PendingCount());
    }

    [Fact]
    public void A_malformed_chain_left_uncompleted_can_be_rewound_with_the_chains_before_it()
    {
        var queue = _driver.CreateQueue();
        var good = _driver.AddChain(new GuestBuffer(_driver.Alloc(64), 64, true));
        var bad = _driver.AddChain(new GuestBuffer(0xFFFF_0000_0000, 64, true)); // outside guest memory
        _driver.Publish(16);                                                     // a head naming no descriptor

        Assert.Equal(PopStatus.Chain, queue.TryPop(out _, out _, completeMalformed: false));
        Assert.Equal(PopStatus.Malformed, queue.TryPop(out var chain, out var error, completeMalformed: false));
        Assert.Equal((bad, ChainError.AddressOutOfRange), (chain.HeadIndex, error));
        Assert.Equal(PopStatus.Malformed, queue.TryPop(out _, out error, completeMalformed: false));
        Assert.Equal(ChainError.HeadIndexOutOfRange, error);
        Assert.Equal(0, queue.NextUsed); // nothing completed
        Assert.Equal(3, queue.Rewindable);

        queue.Rewind(3);
        Assert.Equal(PopStatus.Chain, queue.TryPop(out chain, out _));
        Assert.Equal(good, chain.HeadIndex);
        Assert.Equal(PopStatus.Malformed, queue.TryPop(out _, out _)); // completed this time
        Assert.Equal(1, queue.NextUsed);
        Assert.Equal((bad, 0u), _driver.UsedElement(0));
    }

    [Fact]
    public void Sixteen_bit_indices_wrap_around()
    {
        const ushort start = 65533;
        _driver.AvailIdx = start;
        _driver.UsedIdx = start;
        var queue = _driver.CreateQueue(nextAvail: start);

        var heads = new List<ushort>();
        for (var i = 0; i < 6; i++)
            heads.Add(_driver.AddChain(new GuestBuffer(_driver.Alloc(8), (uint)(10 + i), false)));
        Assert.Equal(3, _driver.AvailIdx);
        Assert.Equal(6, queue.PendingCount());

        for (var i = 0; i < 6; i++)
        {
            Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out _));
            Assert.Equal(heads[i], chain.HeadIndex);
            Assert.Equal((ulong)(10 + i), chain.ReadableLength);
            queue.AddUsed(chain.HeadIndex, (uint)i);
        }
        Assert.Equal(PopStatus.Empty, queue.TryPop(out _, out _));
        Assert.Equal(3, queue.NextAvail);
        Assert.Equal(3, queue.NextUsed);

        queue.PublishUsed();
        Assert.Equal(3, _driver.UsedIdx);
        for (var i = 0; i < 6; i++)
            Assert.Equal((heads[i], (uint)i), _driver.UsedElement((ushort)(start + i)));
    }

    [Fact]
    public void A_full_ring_is_not_corrupt()
    {
        var queue = _driver.CreateQueue();
        for (var i = 0; i < 16; i++)
            _driver.AddChain(new GuestBuffer(_driver.Alloc(8), 8, false));
        Assert.Equal(16, queue.PendingCount());
        Assert.False(queue.IsBroken);
        var popped = 0;
        while (queue.TryPop(out _, out _) == PopStatus.Chain)
            popped++;
        Assert.Equal(16, popped);
    }

    [Fact]
    public void Avail_idx_more_than_size_ahead_breaks_the_queue_for_good()
    {
        var queue = _driver.CreateQueue();
        _driver.AddChain(new GuestBuffer(_driver.Alloc(8), 8, false));
        _driver.AvailIdx = 17;

        Assert.Equal(0, queue.PendingCount());
        Assert.True(queue.IsBroken);
        Assert.Equal(PopStatus.Empty, queue.TryPop(out _, out _));

        _driver.AvailIdx = 1; // sane again, but the device needs a reset first
        Assert.Equal(0, queue.PendingCount());
        Assert.Equal(PopStatus.Empty, queue.TryPop(out _, out _));
        Assert.False(queue.EnableNotification());
    }

    [Fact]
    public void Avail_idx_moving_backwards_breaks_the_queue()
    {
        var queue = _driver.CreateQueue();
        for (var i = 0; i < 2; i++)
            _driver.AddChain(new GuestBuffer(_driver.Alloc(8), 8, false));
        Assert.Equal(PopStatus.Chain, queue.TryPop(out _, out _));
        Assert.Equal(PopStatus.Chain, queue.TryPop(out _, out _));
        _driver.AvailIdx = 1;

        Assert.Equal(PopStatus.Empty, queue.TryPop(out _, out _));
        Assert.True(queue.IsBroken);
    }

    [Fact]
    public void Avail_idx_is_read_once_per_batch()
    {
        var queue = _driver.CreateQueue();
        _driver.AddChain(new GuestBuffer(_driver.Alloc(8), 8, false));
        _driver.AddChain(new GuestBuffer(_driver.Alloc(8), 8, false));
        Assert.Equal(PopStatus.Chain, queue.TryPop(out _, out _));

        // A corrupt index written mid-batch is noticed once the known chains are used up.
        _driver.AvailIdx = 100;
        Assert.Equal(PopStatus.Chain, queue.TryPop(out _, out _));
        Assert.False(queue.IsBroken);
        Assert.Equal(PopStatus.Empty, queue.TryPop(out _, out _));
        Assert.True(queue.IsBroken);
    }
}
