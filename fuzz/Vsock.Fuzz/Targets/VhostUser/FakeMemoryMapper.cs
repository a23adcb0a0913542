using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Memory;

namespace Vsock.Fuzz.Targets.VhostUser;

/// <summary>
/// Maps "guest RAM" as native memory instead of mmapping the fd (calloc: pages are only touched if used, so large
/// regions cost little). Refuses like a failing mmap past <see cref="MaxTotal"/> bytes in all; counts live
/// regions, so the target can prove each was released exactly once.
/// </summary>
internal sealed unsafe class FakeMemoryMapper : IMemoryMapper
{
    public const ulong MaxTotal = 256UL << 20;

    private ulong _liveBytes;

    public int Live { get; private set; }

    public MemoryRegion Map(SafeFileHandle fd, ulong mmapOffset, ulong guestPhysicalAddress, ulong size, ulong userAddress)
    {
        Invariant.Holds(!fd.IsClosed && !fd.IsInvalid, "the session passed a closed fd to the memory mapper");
        if (size > MaxTotal - _liveBytes)
            throw new IOException($"cannot map 0x{size:x} bytes (fake mmap limit)");
        var p = NativeMemory.AllocZeroed((nuint)size);
        var region = new MemoryRegion(guestPhysicalAddress, size, userAddress, (nint)p, new Allocation(this, (nint)p, size));
        _liveBytes += size;
        Live++;
        return region;
    }

    private sealed class Allocation(FakeMemoryMapper owner, nint pointer, ulong size) : IDisposable
    {
        private bool _freed;

        public void Dispose()
        {
            Invariant.Holds(!_freed, "a memory region was released twice");
            _freed = true;
            NativeMemory.Free((void*)pointer);
            owner._liveBytes -= size;
            owner.Live--;
        }
    }
}
