using Microsoft.Win32.SafeHandles;

namespace Vsock.Device.Memory;

/// <summary>
/// Maps one region of the VMM's guest RAM (an fd received over SCM_RIGHTS) into this process.
/// The production mapper mmaps shared (<c>Vsock.Device.Interop.MmapMemoryMapper</c>); tests may map
/// native memory instead. The returned region owns the mapping; the fd itself is not kept (the
/// caller disposes it after mapping, as a mapping outlives its fd).
/// </summary>
public interface IMemoryMapper
{
    MemoryRegion Map(SafeFileHandle fd, ulong mmapOffset, ulong guestPhysicalAddress, ulong size, ulong userAddress);
}
