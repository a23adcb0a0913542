using Vsock.Device.Memory;
using Vsock.Device.Tests.TestSupport;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.Virtio;

public sealed class SplitQueueConstructionTests : IDisposable
{
    private readonly NativeGuestMemory _ram = new(0x10_0000);

    public void Dispose() => _ram.Dispose();

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(1000)]
    [InlineData(65535)]
    public void Rejects_a_size_that_is_not_a_power_of_two_up_to_32768(int size)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SplitQueue(_ram.Memory, (ushort)size, 0, 0x8000, 0x9000, false, false));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(256)]
    [InlineData(32768)]
    public void Accepts_power_of_two_sizes(int size)
    {
        var driver = new MockDriver(_ram.Memory, (ushort)size);
        var queue = driver.CreateQueue();
        Assert.Equal(size, queue.Size);
        Assert.Equal(PopStatus.Empty, queue.TryPop(out _, out _));
    }

    [Theory]
    [InlineData(0x8, 0x8000, 0x9000)]   // descriptor table needs 16
    [InlineData(0x0, 0x8001, 0x9000)]   // avail ring needs 2
    [InlineData(0x0, 0x8000, 0x9002)]   // used ring needs 4
    public void Rejects_misaligned_ring_areas(ulong desc, ulong avail, ulong used)
    {
        Assert.Throws<ArgumentException>(() => new SplitQueue(_ram.Memory, 16, desc, avail, used, false, false));
    }

    [Theory]
    [InlineData(0xF_FF10, 0x8000, 0x9000)]   // table runs past the end
    [InlineData(0x0, 0xF_FFF0, 0x9000)]
    [InlineData(0x0, 0x8000, 0xF_FF80)]
    [InlineData(0x0, 0x8000, 0x20_0000)]
    [InlineData(0xFFFF_FFFF_FFFF_FFF0, 0x8000, 0x9000)]
    public void Rejects_ring_areas_outside_guest_memory(ulong desc, ulong avail, ulong used)
    {
        Assert.Throws<GuestMemoryException>(() => new SplitQueue(_ram.Memory, 16, desc, avail, used, false, false));
    }

    [Fact]
    public void Starts_both_rings_at_the_given_base()
    {
        var queue = new MockDriver(_ram.Memory, 16).CreateQueue(nextAvail: 700);
        Assert.Equal(700, queue.NextAvail);
        Assert.Equal(700, queue.NextUsed);
        Assert.False(queue.IsBroken);
    }
}
