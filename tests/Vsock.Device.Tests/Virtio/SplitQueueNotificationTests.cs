using Vsock.Device.Tests.TestSupport;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.Virtio;

public sealed class SplitQueueNotificationTests : IDisposable
{
    private readonly NativeGuestMemory _ram = new(0x10_0000);
    private readonly MockDriver _driver;

    public SplitQueueNotificationTests() => _driver = new MockDriver(_ram.Memory, 16);

    public void Dispose() => _ram.Dispose();

    /// <summary>Makes <paramref name="count"/> chains available, pops them, completes and publishes them.</summary>
    private void Complete(SplitQueue queue, int count)
    {
        for (var i = 0; i < count; i++)
            _driver.AddChain(new GuestBuffer(_driver.Alloc(8), 8, true));
        for (var i = 0; i < count; i++)
        {
            Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out _));
            queue.AddUsed(chain.HeadIndex, 8);
        }
        queue.PublishUsed();
    }

    [Fact]
    public void Without_event_idx_notifies_unless_the_driver_set_no_interrupt()
    {
        var queue = _driver.CreateQueue();
        Complete(queue, 1);
        Assert.True(queue.NeedsNotification());

        _driver.AvailFlags = SplitRingLayout.AvailFlagNoInterrupt;
        Complete(queue, 1);
        Assert.False(queue.NeedsNotification());

        _driver.AvailFlags = 0;
        Complete(queue, 2);
        Assert.True(queue.NeedsNotification());
    }

    [Fact]
    public void Nothing_published_since_the_last_check_needs_no_notification()
    {
        var queue = _driver.CreateQueue();
        Assert.False(queue.NeedsNotification());
        Complete(queue, 1);
        Assert.True(queue.NeedsNotification());
        Assert.False(queue.NeedsNotification());

        // Added but not yet published does not count either.
        _driver.AddChain(new GuestBuffer(_driver.Alloc(8), 8, true));
        Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out _));
        queue.AddUsed(chain.HeadIndex, 0);
        Assert.False(queue.NeedsNotification());
    }

    [Fact]
    public void Event_idx_notifies_when_used_idx_passes_used_event()
    {
        var queue = _driver.CreateQueue(eventIdx: true);

        // used_event 0: the driver wants a notification once used.idx moves past 0.
        _driver.UsedEvent = 0;
        Complete(queue, 1);
        Assert.True(queue.NeedsNotification());

        // used_event 4: new idx 2 and 4 have not passed it yet, 5 has.
        _driver.UsedEvent = 4;
        Complete(queue, 1);
        Assert.False(queue.NeedsNotification());
        Complete(queue, 2);
        Assert.False(queue.NeedsNotification());
        Complete(queue, 1);
        Assert.True(queue.NeedsNotification());

        // Past used_event already, but the notification for it was sent: no new one.
        Complete(queue, 1);
        Assert.False(queue.NeedsNotification());
    }

    [Fact]
    public void Event_idx_notification_covers_a_batch_that_jumps_over_used_event()
    {
        var queue = _driver.CreateQueue(eventIdx: true);
        _driver.UsedEvent = 2;
        Complete(queue, 6);
        Assert.True(queue.NeedsNotification());
    }

    [Fact]
    public void Event_idx_ignores_no_interrupt()
    {
        var queue = _driver.CreateQueue(eventIdx: true);
        _driver.AvailFlags = SplitRingLayout.AvailFlagNoInterrupt;
        _driver.UsedEvent = 0;
        Complete(queue, 1);
        Assert.True(queue.NeedsNotification());
    }

    [Fact]
    public void Event_idx_decision_survives_index_wrap_around()
    {
        const ushort start = 65534;
        _driver.AvailIdx = start;
        _driver.UsedIdx = start;
        var queue = _driver.CreateQueue(eventIdx: true, nextAvail: start);

        _driver.UsedEvent = 0; // wants a notification once used.idx passes 0, i.e. reaches 1
        Complete(queue, 2);    // 65534 -> 0
        Assert.False(queue.NeedsNotification());
        Complete(queue, 1);    // 0 -> 1
        Assert.True(queue.NeedsNotification());
        Assert.Equal(1, _driver.UsedIdx);

        _driver.UsedEvent = 65535;
        Complete(queue, 1);
        Assert.False(queue.NeedsNotification());
    }

    [Fact]
    public void Notify_on_empty_overrides_no_interrupt_when_the_ring_runs_dry()
    {
        var queue = _driver.CreateQueue();
        queue.NotifyOnEmpty = true;
        _driver.AvailFlags = SplitRingLayout.AvailFlagNoInterrupt;

        Complete(queue, 1);
        Assert.True(queue.NeedsNotification());

        // Chains still waiting: no-interrupt applies.
        Complete(queue, 1);
        _driver.AddChain(new GuestBuffer(_driver.Alloc(8), 8, true));
        Assert.False(queue.NeedsNotification());

        // Without the feature the empty ring changes nothing.
        queue.NotifyOnEmpty = false;
        Assert.Equal(PopStatus.Chain, queue.TryPop(out var chain, out _));
        queue.AddUsed(chain.HeadIndex, 0);
        queue.PublishUsed();
        Assert.False(queue.NeedsNotification());
    }

    [Fact]
    public void Notify_on_empty_applies_with_event_idx_too()
    {
        var queue = _driver.CreateQueue(eventIdx: true);
        queue.NotifyOnEmpty = true;
        _driver.UsedEvent = 1000;
        Complete(queue, 1);
        Assert.True(queue.NeedsNotification());
    }

    [Fact]
    public void Without_event_idx_disable_and_enable_toggle_no_notify()
    {
        var queue = _driver.CreateQueue();
        queue.DisableNotification();
        Assert.Equal(SplitRingLayout.UsedFlagNoNotify, _driver.UsedFlags);

        Assert.False(queue.EnableNotification());
        Assert.Equal(0, _driver.UsedFlags);
    }

    [Fact]
    public void Enable_reports_chains_that_arrived_while_kicks_were_off()
    {
        var queue = _driver.CreateQueue();
        queue.DisableNotification();
        _driver.AddChain(new GuestBuffer(_driver.Alloc(8), 8, true));
        Assert.True(queue.EnableNotification());

        Assert.Equal(PopStatus.Chain, queue.TryPop(out _, out _));
        Assert.False(queue.EnableNotification());
    }

    [Fact]
    public void Event_idx_enable_publishes_avail_event_and_disable_leaves_flags_alone()
    {
        var queue = _driver.CreateQueue(eventIdx: true);
        queue.DisableNotification();
        Assert.Equal(0, _driver.UsedFlags);

        for (var i = 0; i < 3; i++)
            _driver.AddChain(new GuestBuffer(_driver.Alloc(8), 8, true));
        Assert.True(queue.EnableNotification());
        Assert.Equal(0, _driver.AvailEvent);

        while (queue.TryPop(out _, out _) == PopStatus.Chain)
        {
        }
        Assert.False(queue.EnableNotification());
        Assert.Equal(3, _driver.AvailEvent);
        Assert.Equal(0, _driver.UsedFlags);
    }

    [Fact]
    public void Event_idx_avail_event_wraps_with_the_avail_index()
    {
        const ushort start = 65535;
        _driver.AvailIdx = start;
        var queue = _driver.CreateQueue(eventIdx: true, nextAvail: start);
        Assert.False(queue.EnableNotification());
        Assert.Equal(start, _driver.AvailEvent);

        _driver.AddChain(new GuestBuffer(_driver.Alloc(8), 8, true));
        _driver.AddChain(new GuestBuffer(_driver.Alloc(8), 8, true));
        while (queue.TryPop(out _, out _) == PopStatus.Chain)
        {
        }
        Assert.False(queue.EnableNotification());
        Assert.Equal(1, _driver.AvailEvent);
    }
}
