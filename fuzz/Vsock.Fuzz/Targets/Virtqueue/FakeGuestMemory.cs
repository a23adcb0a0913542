using System.Runtime.InteropServices;
using Vsock.Device.Memory;

namespace Vsock.Fuzz.Targets.Virtqueue;

/// <summary>
/// Guest RAM for one input: native regions with guard bytes on both sides, and whole-memory snapshots so the
/// target can tell exactly which bytes the device wrote. (tests/Vsock.Device.Tests/TestSupport/NativeGuestMemory
/// is the test suite's version; this one adds the snapshots and frees itself per input.)
/// </summary>
internal sealed unsafe class FakeGuestMemory : IDisposable
{
    private const int GuardBytes = 64;
    private const byte GuardPattern = 0xA5;

    private readonly List<(ulong Gpa, ulong Size, nint Block)> _blocks = [];
    private readonly GuestMemory _memory;

    /// <summary>Regions that overlap an earlier one are left out (GuestMemory refuses overlaps, like the session).</summary>
    public FakeGuestMemory(IEnumerable<(ulong Gpa, ulong Size)> regions)
    {
        var memoryRegions = new List<MemoryRegion>();
        foreach (var (gpa, size) in regions)
        {
            if (_blocks.Any(b => gpa < b.Gpa + b.Size && b.Gpa < gpa + size))
                continue;
            var block = (byte*)NativeMemory.AllocZeroed((nuint)(size + 2 * GuardBytes));
            new Span<byte>(block, GuardBytes).Fill(GuardPattern);
            new Span<byte>(block + GuardBytes + size, GuardBytes).Fill(GuardPattern);
            _blocks.Add((gpa, size, (nint)block));
            memoryRegions.Add(new MemoryRegion(gpa, size, 0x7f00_0000_0000 + gpa, (nint)(block + GuardBytes), null));
        }
        _memory = new GuestMemory(memoryRegions);
    }

    public GuestMemory Memory => _memory;

    public int RegionCount => _blocks.Count;

    /// <summary>The guest (the input) writes bytes; what falls outside a region is dropped.</summary>
    public void GuestWrite(ulong gpa, ReadOnlySpan<byte> bytes)
    {
        if (_memory.TryGetHostPointer(gpa, (ulong)bytes.Length, out var p))
            bytes.CopyTo(new Span<byte>(p, bytes.Length));
    }

    public byte[][] NewSnapshot() => _blocks.Select(b => new byte[b.Size]).ToArray();

    public void TakeSnapshot(byte[][] snapshot)
    {
        for (var i = 0; i < _blocks.Count; i++)
            Region(i).CopyTo(snapshot[i]);
    }

    /// <summary>Reads from a snapshot as from guest memory: false unless [gpa, gpa+length) lies in one region.</summary>
    public bool TryRead(byte[][] snapshot, ulong gpa, Span<byte> destination)
    {
        for (var i = 0; i < _blocks.Count; i++)
        {
            var (start, size, _) = _blocks[i];
            if (gpa >= start && gpa - start <= size && (ulong)destination.Length <= size - (gpa - start))
            {
                snapshot[i].AsSpan((int)(gpa - start), destination.Length).CopyTo(destination);
                return true;
            }
        }
        return false;
    }

    /// <summary>Marks [gpa, gpa+length) as allowed to differ from the snapshot (copies the live bytes into it).</summary>
    public void Allow(byte[][] snapshot, ulong gpa, ulong length)
    {
        for (var i = 0; i < _blocks.Count; i++)
        {
            var (start, size, _) = _blocks[i];
            var from = Math.Max(gpa, start);
            var to = Math.Min(gpa + length, start + size); // callers pass ranges checked against memory: no overflow
            if (from < to)
                Region(i).Slice((int)(from - start), (int)(to - from)).CopyTo(snapshot[i].AsSpan((int)(from - start)));
        }
    }

    /// <summary>True if guest memory equals the snapshot (after <see cref="Allow"/>) and no guard byte changed.</summary>
    public bool Unchanged(byte[][] snapshot)
    {
        for (var i = 0; i < _blocks.Count; i++)
        {
            if (!Region(i).SequenceEqual(snapshot[i]))
                return false;
        }
        return GuardsIntact;
    }

    public bool GuardsIntact => _blocks.TrueForAll(b =>
        !new Span<byte>((void*)b.Block, GuardBytes).ContainsAnyExcept(GuardPattern) &&
        !new Span<byte>((byte*)b.Block + GuardBytes + (int)b.Size, GuardBytes).ContainsAnyExcept(GuardPattern));

    private Span<byte> Region(int i) => new((byte*)_blocks[i].Block + GuardBytes, (int)_blocks[i].Size);

    public void Dispose()
    {
        foreach (var b in _blocks)
            NativeMemory.Free((void*)b.Block);
        _blocks.Clear();
    }
}
