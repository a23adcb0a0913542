using System.Runtime.InteropServices;
using Vsock.Device.Memory;

namespace Vsock.Device.Tests.TestSupport;

/// <summary>
/// Fake guest RAM for tests: each region is native memory from <see cref="NativeMemory.AllocZeroed(nuint)"/>
/// wrapped in a <see cref="MemoryRegion"/> whose owner frees it. Every block carries guard bytes on both sides of
/// the region, so a test can prove that nothing wrote outside guest memory.
/// </summary>
internal sealed unsafe class NativeGuestMemory : IDisposable
{
    public const int GuardBytes = 256;
    private const byte GuardPattern = 0xA5;

    private readonly List<NativeBlock> _blocks = [];

    public NativeGuestMemory(ulong size) : this((0UL, size))
    {
    }

    public NativeGuestMemory(params (ulong Gpa, ulong Size)[] regions)
    {
        var memoryRegions = new List<MemoryRegion>();
        foreach (var (gpa, size) in regions)
        {
            var block = new NativeBlock(size);
            _blocks.Add(block);
            // The user address is made up: tests of the queue and packets never translate VMM addresses.
            memoryRegions.Add(new MemoryRegion(gpa, size, 0x7f00_0000_0000 + gpa, block.Host, block));
        }
        Memory = new GuestMemory(memoryRegions);
    }

    public GuestMemory Memory { get; }

    public Span<byte> Bytes(ulong gpa, int length) => Memory.GetSpan(gpa, length);

    /// <summary>True if no byte just outside any region was changed.</summary>
    public bool GuardsIntact => _blocks.TrueForAll(b => b.GuardsIntact);

    /// <summary>Fills every region with bytes from <paramref name="random"/>.</summary>
    public void Randomize(Random random)
    {
        foreach (var region in Memory.Regions)
            random.NextBytes(new Span<byte>((void*)region.HostAddress, checked((int)region.Size)));
    }

    public void Dispose() => Memory.Dispose();

    private sealed class NativeBlock : IDisposable
    {
        private byte* _base;
        private readonly ulong _size;

        public NativeBlock(ulong size)
        {
            _size = size;
            _base = (byte*)NativeMemory.AllocZeroed((nuint)(size + 2 * GuardBytes));
            new Span<byte>(_base, GuardBytes).Fill(GuardPattern);
            new Span<byte>(_base + GuardBytes + size, GuardBytes).Fill(GuardPattern);
        }

        public nint Host => (nint)(_base + GuardBytes);

        public bool GuardsIntact =>
            !new Span<byte>(_base, GuardBytes).ContainsAnyExcept(GuardPattern) &&
            !new Span<byte>(_base + GuardBytes + _size, GuardBytes).ContainsAnyExcept(GuardPattern);

        public void Dispose()
        {
            NativeMemory.Free(_base);
            _base = null;
        }
    }
}
