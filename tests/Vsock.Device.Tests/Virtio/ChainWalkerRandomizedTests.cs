using Vsock.Device.Memory;
using Vsock.Device.Tests.TestSupport;
using Vsock.Device.Virtio;
using Vsock.Models;

namespace Vsock.Device.Tests.Virtio;

/// <summary>
/// Feeds random and mutated descriptor tables and avail rings to the queue and compares every popped chain with
/// a plain reference walker (visited-set loop detection). Only typed results may come out: no exception, no
/// write outside guest memory or into the driver's areas, and every accepted buffer lies inside memory.
/// </summary>
public sealed unsafe class ChainWalkerRandomizedTests : IDisposable
{
    private const int Inputs = 100_000;
    private const ulong RamSize = 0x8000;
    private const ulong SecondRegion = 0xA000;
    private const ulong SecondSize = 0x1000;
    private const ulong IndirectArea = 0x4000;
    private const int IndirectEntries = 64;

    private readonly NativeGuestMemory _ram = new((0, RamSize), (SecondRegion, SecondSize));

    public void Dispose() => _ram.Dispose();

    [Theory]
    [InlineData(1, 0x5eed_0001, false, false)]
    [InlineData(8, 0x5eed_0002, true, false)]
    [InlineData(16, 0x5eed_0003, false, true)]
    [InlineData(64, 0x5eed_0004, true, true)]
    public void Random_chains_only_yield_typed_results(int size, int seed, bool indirect, bool eventIdx)
    {
        var random = new Random(seed);
        var memory = _ram.Memory;
        _ram.Randomize(random);
        var driver = new MockDriver(memory, (ushort)size);
        driver.AvailIdx = 0;
        driver.UsedIdx = 0;
        var queue = driver.CreateQueue(eventIdx, indirect);
        var driverAreas = new (ulong Gpa, int Length)[]
        {
            (driver.DescTable, (int)SplitRingLayout.DescriptorTableBytes((ushort)size)),
            (driver.AvailRing, (int)SplitRingLayout.AvailRingBytes((ushort)size)),
            (IndirectArea, IndirectEntries * VirtqDescriptor.Size),
        };
        var snapshot = new byte[driverAreas.Sum(a => a.Length)];

        var popped = 0;
        var outcomes = new Dictionary<(PopStatus, ChainError), int>();
        while (popped < Inputs)
        {
            MutateTables(random, driver, size);
            var heads = random.Next(1, Math.Min(3, size) + 1);
            for (var i = 0; i < heads; i++)
                driver.Publish(random.Next(10) == 0 ? (ushort)random.Next(65536) : (ushort)random.Next(size));
            if (random.Next(500) == 0)
                driver.AvailIdx = (ushort)random.Next(65536); // corrupt (or not) on purpose

            TakeSnapshot(memory, driverAreas, snapshot);
            while (true)
            {
                var usedBefore = queue.NextUsed;
                var status = queue.TryPop(out var chain, out var error);
                Assert.True(Enum.IsDefined(status));
                Assert.True(Enum.IsDefined(error));
                outcomes[(status, error)] = outcomes.GetValueOrDefault((status, error)) + 1;
                if (status == PopStatus.Empty)
                {
                    Assert.Equal(ChainError.None, error);
                    break;
                }
                popped++;
                var expected = ReferenceWalk(memory, (ushort)size, indirect, chain.HeadIndex);
                if (status == PopStatus.Chain)
                {
                    Assert.Equal(ChainError.None, error);
                    Assert.NotNull(expected);
                    Assert.Equal(expected, chain.Buffers.ToArray());
                    Assert.Equal(expected.Where(b => !b.DeviceWritable).Aggregate(0UL, (s, b) => s + b.Length), chain.ReadableLength);
                    Assert.Equal(expected.Where(b => b.DeviceWritable).Aggregate(0UL, (s, b) => s + b.Length), chain.WritableLength);
                    if (random.Next(4) == 0)
                        queue.Rewind(1);
                    else
                        queue.AddUsed(chain.HeadIndex, (uint)random.Next(100));
                }
                else
                {
                    Assert.NotEqual(ChainError.None, error);
                    Assert.Null(expected);
                    if (chain.HeadIndex >= size)
                    {
                        Assert.Equal(ChainError.HeadIndexOutOfRange, error);
                        Assert.Equal(usedBefore, queue.NextUsed);
                    }
                    else
                    {
                        Assert.Equal((ushort)(usedBefore + 1), queue.NextUsed);
                        Assert.Equal((chain.HeadIndex, 0u), driver.UsedElement(usedBefore));
                    }
                }
            }
            AssertUnchanged(memory, driverAreas, snapshot);

            queue.PublishUsed();
            driver.UsedEvent = (ushort)random.Next(65536);
            driver.AvailFlags = (ushort)random.Next(4);
            queue.NotifyOnEmpty = random.Next(2) == 0;
            _ = queue.NeedsNotification();
            queue.DisableNotification();
            _ = queue.EnableNotification();

            if (queue.IsBroken)
            {
                // The device would be reset; start over where the driver is.
                Assert.Equal(0, queue.PendingCount());
                queue = driver.CreateQueue(eventIdx, indirect, driver.AvailIdx);
                driver.UsedIdx = driver.AvailIdx;
            }
        }

        Assert.True(_ram.GuardsIntact);
        // The generator must reach the interesting outcomes, or the test proves little.
        Assert.True(outcomes.GetValueOrDefault((PopStatus.Chain, ChainError.None)) > 1000);
        foreach (var error in new[] { ChainError.HeadIndexOutOfRange, ChainError.NextIndexOutOfRange, ChainError.AddressOutOfRange })
            Assert.True(outcomes.GetValueOrDefault((PopStatus.Malformed, error)) > 100, $"{error} seen too rarely");
        if (indirect)
        {
            foreach (var error in new[] { ChainError.IndirectNested, ChainError.IndirectWithNext, ChainError.IndirectTableBadLength })
                Assert.True(outcomes.GetValueOrDefault((PopStatus.Malformed, error)) > 10, $"{error} seen too rarely");
        }
        else
        {
            Assert.True(outcomes.GetValueOrDefault((PopStatus.Malformed, ChainError.IndirectNotNegotiated)) > 100);
        }
    }

    /// <summary>Rewrites a few descriptors (and indirect entries) with random, mostly plausible values.</summary>
    private static void MutateTables(Random random, MockDriver driver, int size)
    {
        var count = random.Next(1, 5);
        for (var i = 0; i < count; i++)
        {
            var d = RandomDescriptor(random, size);
            driver.WriteDescriptor((ushort)random.Next(size), d.Address, d.Length, d.Flags, d.Next);
        }
        count = random.Next(0, 4);
        for (var i = 0; i < count; i++)
        {
            var d = RandomDescriptor(random, IndirectEntries);
            driver.WriteDescriptorAt(IndirectArea + (ulong)random.Next(IndirectEntries) * VirtqDescriptor.Size, d.Address, d.Length, d.Flags, d.Next);
        }
    }

    private static VirtqDescriptor RandomDescriptor(Random random, int tableSize)
    {
        var flags = (ushort)((random.Next(2) == 0 ? DescriptorFlags.Next : 0) |
                             (random.Next(3) == 0 ? DescriptorFlags.Write : 0) |
                             (random.Next(8) == 0 ? DescriptorFlags.Indirect : 0));
        if (random.Next(50) == 0)
            flags = (ushort)random.Next(65536);

        ulong address;
        uint length;
        if ((flags & DescriptorFlags.Indirect) != 0 && random.Next(4) != 0)
        {
            // Usually a table in the indirect area, sometimes with a bad length.
            var entries = random.Next(1, IndirectEntries + 1);
            address = IndirectArea + (ulong)random.Next(IndirectEntries - entries + 1) * VirtqDescriptor.Size;
            length = random.Next(8) == 0 ? (uint)random.Next(0, 2000) : (uint)(entries * VirtqDescriptor.Size);
        }
        else
        {
            address = random.Next(10) switch
            {
                < 7 => (ulong)random.Next((int)RamSize),
                7 => SecondRegion + (ulong)random.Next((int)SecondSize),
                8 => (ulong)random.NextInt64(0, 0x2_0000),
                _ => random.Next(2) == 0 ? ulong.MaxValue - (ulong)random.Next(4096) : (ulong)random.NextInt64(),
            };
            length = random.Next(10) switch
            {
                < 7 => (uint)random.Next(65),
                < 9 => (uint)random.Next(0x2000),
                _ => (uint)random.NextInt64(0, 1L << 32),
            };
        }
        var next = random.Next(5) == 0 ? (ushort)random.Next(65536) : (ushort)random.Next(tableSize);
        return new VirtqDescriptor { Address = address, Length = length, Flags = flags, Next = next };
    }

    /// <summary>The chain as the model walks it over live memory (the table at gpa 0, MockDriver's layout); null if malformed.</summary>
    private static GuestBuffer[]? ReferenceWalk(GuestMemory memory, ushort size, bool indirectNegotiated, ushort head) =>
        ChainModel.Walk(memory, (gpa, entry) => ReadLive(memory, gpa, entry), 0, size, indirectNegotiated, head)?.ToArray();

    private static bool ReadLive(GuestMemory memory, ulong gpa, Span<byte> entry)
    {
        memory.Read(gpa, entry); // the table is always in memory here
        return true;
    }

    private static void TakeSnapshot(GuestMemory memory, (ulong Gpa, int Length)[] areas, byte[] snapshot)
    {
        var offset = 0;
        foreach (var (gpa, length) in areas)
        {
            memory.Read(gpa, snapshot.AsSpan(offset, length));
            offset += length;
        }
    }

    /// <summary>The device never writes the descriptor table, the avail ring or indirect tables.</summary>
    private static void AssertUnchanged(GuestMemory memory, (ulong Gpa, int Length)[] areas, byte[] snapshot)
    {
        var offset = 0;
        foreach (var (gpa, length) in areas)
        {
            Assert.True(memory.GetSpan(gpa, length).SequenceEqual(snapshot.AsSpan(offset, length)));
            offset += length;
        }
    }
}
