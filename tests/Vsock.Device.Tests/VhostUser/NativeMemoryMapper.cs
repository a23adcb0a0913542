using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Memory;

namespace Vsock.Device.Tests.VhostUser;

/// <summary>
/// Maps "guest RAM" as zeroed native memory instead of mmapping the fd; counts live allocations so
/// tests can see every region was released exactly once.
/// </summary>
internal sealed unsafe class NativeMemoryMapper : IMemoryMapper
{
    private int _live;

    /// <summary>Larger requests fail like an mmap that cannot be satisfied.</summary>
    public ulong MaxSize { get; init; } = 64UL << 20;

    /// <summary>When set, every Map call throws it (an mmap failure).</summary>
    public Exception? Failure { get; set; }

    public int Live => Volatile.Read(ref _live);
    public int MapCount { get; private set; }
    public List<(ulong MmapOffset, ulong Gpa, ulong Size, ulong UserAddress)> Maps { get; } = [];

    public MemoryRegion Map(SafeFileHandle fd, ulong mmapOffset, ulong guestPhysicalAddress, ulong size, ulong userAddress)
    {
        if (fd.IsInvalid || fd.IsClosed)
            throw new InvalidOperationException("the session passed a closed fd to the mapper");
        if (Failure is not null)
            throw Failure;
        if (size > MaxSize)
            throw new IOException($"test mapper cannot allocate 0x{size:x} bytes");
        MapCount++;
        Maps.Add((mmapOffset, guestPhysicalAddress, size, userAddress));
        var p = NativeMemory.AllocZeroed((nuint)size);
        Interlocked.Increment(ref _live);
        return new MemoryRegion(guestPhysicalAddress, size, userAddress, (nint)p, new Allocation(this, (nint)p));
    }

    private sealed class Allocation(NativeMemoryMapper owner, nint pointer) : IDisposable
    {
        private bool _freed;

        public void Dispose()
        {
            if (_freed)
                throw new InvalidOperationException("memory region released twice");
            _freed = true;
            NativeMemory.Free((void*)pointer);
            Interlocked.Decrement(ref owner._live);
        }
    }
}
