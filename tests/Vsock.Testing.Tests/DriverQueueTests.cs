using System.Buffers.Binary;
using Vsock.Testing.Virtio;

namespace Vsock.Testing.Tests;

public sealed class DriverQueueTests : IDisposable
{
    private readonly GuestRam _ram = new(1 << 20, 0x7f00_0000_0000, GuestMemoryBacking.SealedMemFd);

    public void Dispose() => _ram.Dispose();

    [Fact]
    public void Ring_parts_are_page_aligned_and_sized_for_the_queue()
    {
        var q = new DriverQueue(_ram, 128);
        Assert.Equal(0ul, q.DescGpa % 4096);
        Assert.Equal(0ul, q.AvailGpa % 4096);
        Assert.Equal(0ul, q.UsedGpa % 4096);
        Assert.True(q.AvailGpa >= q.DescGpa + 128 * 16);
        Assert.True(q.UsedGpa >= q.AvailGpa + 6 + 2 * 128);
        Assert.NotEqual(0ul, q.DescGpa); // GPA 0 is never handed out
        Assert.Throws<ArgumentOutOfRangeException>(() => new DriverQueue(_ram, 100));
    }

    [Fact]
    public void Publishing_writes_the_ring_entry_then_the_index()
    {
        var q = new DriverQueue(_ram, 8);
        Span<ushort> chain = stackalloc ushort[2];
        Assert.True(q.TryAllocate(chain));
        q.WriteDescriptor(chain[0], 0x1000, 44, DriverQueue.DescNext, chain[1]);
        q.MakeAvailable(chain[0]);

        var avail = _ram.Span(q.AvailGpa, 6 + 2 * 8);
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(avail[2..]));
        Assert.Equal(chain[0], BinaryPrimitives.ReadUInt16LittleEndian(avail[4..]));
        Assert.Equal((0x1000ul, 44u, DriverQueue.DescNext, chain[1]), q.ReadDescriptor(chain[0]));
        Assert.Equal(6, q.FreeCount);
        Assert.Equal(1, q.ChainsInFlight);
    }

    [Fact]
    public void Used_chains_return_all_their_descriptors_and_bogus_ids_are_reported()
    {
        var q = new DriverQueue(_ram, 4);
        Span<ushort> chain = stackalloc ushort[3];
        Assert.True(q.TryAllocate(chain));
        Assert.False(q.TryAllocate(stackalloc ushort[2]));
        q.MakeAvailable(chain[0]);

        DeviceUse(q, 0, chain[0], 123);
        DeviceUse(q, 1, 3, 0); // id 3 is free, not a head in flight
        DeviceUse(q, 2, 99, 0); // beyond the queue

        Assert.True(q.TryTakeUsed(out var head, out var length, out var violation));
        Assert.Null(violation);
        Assert.Equal(chain[0], head);
        Assert.Equal(123u, length);
        q.Free(head);
        Assert.Equal(4, q.FreeCount);
        Assert.Equal(0, q.ChainsInFlight);

        Assert.True(q.TryTakeUsed(out _, out _, out violation));
        Assert.NotNull(violation);
        Assert.True(q.TryTakeUsed(out _, out _, out violation));
        Assert.NotNull(violation);
        Assert.False(q.TryTakeUsed(out _, out _, out _));
        var freed = chain[0];
        Assert.Throws<InvalidOperationException>(() => q.Free(freed));
    }

    [Fact]
    public void Event_idx_kicks_only_when_the_device_asked_and_interrupts_rearm_at_last_used()
    {
        var q = new DriverQueue(_ram, 8) { EventIdx = true };
        var availEvent = q.UsedGpa + 4 + 8 * 8;
        Span<ushort> one = stackalloc ushort[1];

        // avail_event 0: the device wants to hear about buffer 0.
        q.TryAllocate(one);
        q.MakeAvailable(one[0]);
        Assert.True(q.KickNeeded());

        // The device has not moved avail_event: it is still processing, no kick for buffer 1.
        q.TryAllocate(one);
        q.MakeAvailable(one[0]);
        Assert.False(q.KickNeeded());

        // It re-armed at 2: buffer 2 gets a kick.
        BinaryPrimitives.WriteUInt16LittleEndian(_ram.Span(availEvent, 2), 2);
        q.TryAllocate(one);
        q.MakeAvailable(one[0]);
        Assert.True(q.KickNeeded());

        DeviceUse(q, 0, 0, 0);
        Assert.True(q.TryTakeUsed(out _, out _, out _));
        Assert.False(q.EnableInterrupts());
        Assert.Equal(1, q.UsedEvent);
        DeviceUse(q, 1, 1, 0);
        Assert.True(q.EnableInterrupts()); // raced: more used entries already there
    }

    [Fact]
    public void Without_event_idx_no_notify_suppresses_kicks()
    {
        var q = new DriverQueue(_ram, 8);
        Span<ushort> one = stackalloc ushort[1];
        q.TryAllocate(one);
        q.MakeAvailable(one[0]);
        Assert.True(q.KickNeeded());
        BinaryPrimitives.WriteUInt16LittleEndian(_ram.Span(q.UsedGpa, 2), DriverQueue.UsedFlagNoNotify);
        q.TryAllocate(one);
        q.MakeAvailable(one[0]);
        Assert.False(q.KickNeeded());
    }

    private void DeviceUse(DriverQueue q, int slot, uint id, uint length)
    {
        var used = _ram.Span(q.UsedGpa, 6 + 8 * q.Size);
        BinaryPrimitives.WriteUInt32LittleEndian(used[(4 + 8 * slot)..], id);
        BinaryPrimitives.WriteUInt32LittleEndian(used[(8 + 8 * slot)..], length);
        BinaryPrimitives.WriteUInt16LittleEndian(used[2..], (ushort)(slot + 1));
    }
}
