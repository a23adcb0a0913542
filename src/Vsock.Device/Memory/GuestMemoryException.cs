namespace Vsock.Device.Memory;

/// <summary>
/// A guest (or VMM) supplied address or length does not fall inside one mapped region.
/// This is bad input from outside the process, never a bug of ours: callers log it and drop
/// the offending descriptor, message or packet.
/// </summary>
public sealed class GuestMemoryException(string message) : Exception(message)
{
}
