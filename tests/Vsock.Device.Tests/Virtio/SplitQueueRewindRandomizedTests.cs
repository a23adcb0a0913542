using Vsock.Device.Tests.TestSupport;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.Virtio;

/// <summary>
/// Random interleavings of publish, pop, rewind and complete against a plain model of the ring: a rewound chain is
/// popped again next, in order; nothing popped before a completion can be rewound; used elements come out in
/// completion order; indices wrap at 65536.
/// </summary>
public sealed class SplitQueueRewindRandomizedTests : IDisposable
{
    private const ushort Size = 16;
    private readonly NativeGuestMemory _ram = new(0x10_0000);

    public void Dispose()
    {
        Assert.True(_ram.GuardsIntact);
        _ram.Dispose();
    }

    [Theory]
    [InlineData(1, (ushort)0)]
    [InlineData(2, (ushort)65530)]
    [InlineData(3, (ushort)32000)]
    public void Rewind_matches_the_model(int seed, ushort start)
    {
        var random = new Random(seed);
        var driver = new MockDriver(_ram.Memory, Size);
        driver.AvailIdx = start;
        driver.UsedIdx = start;
        var queue = driver.CreateQueue(nextAvail: start);
        var buffer = driver.Alloc(8);

        var published = new List<ushort>(); // heads in avail order
        var nextAvail = 0;                  // model position in `published`
        var rewindable = 0;
        var outstanding = new List<ushort>(); // popped, not completed, in pop order
        var completed = new List<ushort>();   // completion order
        var publishedUsed = 0;

        for (var step = 0; step < 20_000; step++)
        {
            switch (random.Next(10))
            {
                case 0 or 1 or 2:
                    if (published.Count - completed.Count < Size)
                        published.Add(driver.AddChain(new GuestBuffer(buffer, 8, true)));
                    break;
                case 3 or 4 or 5:
                    var status = queue.TryPop(out var chain, out _);
                    if (nextAvail == published.Count)
                    {
                        Assert.Equal(PopStatus.Empty, status);
                        break;
                    }
                    Assert.Equal(PopStatus.Chain, status);
                    Assert.Equal(published[nextAvail], chain.HeadIndex);
                    nextAvail++;
                    rewindable++;
                    outstanding.Add(chain.HeadIndex);
                    break;
                case 6 or 7:
                    var k = random.Next(rewindable + 1);
                    queue.Rewind(k);
                    rewindable -= k;
                    nextAvail -= k;
                    outstanding.RemoveRange(outstanding.Count - k, k);
                    break;
                case 8:
                    Assert.Throws<InvalidOperationException>(() => queue.Rewind(rewindable + 1 + random.Next(3)));
                    break;
                default:
                    if (outstanding.Count == 0)
                        break;
                    var head = outstanding[0];
                    outstanding.RemoveAt(0);
                    queue.AddUsed(head, 8);
                    completed.Add(head);
                    rewindable = 0;
                    if (random.Next(3) == 0)
                    {
                        queue.PublishUsed();
                        for (; publishedUsed < completed.Count; publishedUsed++)
                            Assert.Equal((completed[publishedUsed], 8u), driver.UsedElement((ushort)(start + publishedUsed)));
                        Assert.Equal((ushort)(start + completed.Count), driver.UsedIdx);
                    }
                    break;
            }
            Assert.Equal(rewindable, queue.Rewindable);
            Assert.Equal((ushort)(start + nextAvail), queue.NextAvail);
            Assert.Equal(published.Count - nextAvail, queue.PendingCount());
        }
        Assert.False(queue.IsBroken);
    }
}
