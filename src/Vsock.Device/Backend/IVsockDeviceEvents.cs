using Microsoft.Win32.SafeHandles;

namespace Vsock.Device.Backend;

/// <summary>What <see cref="VsockBackend"/> tells its owner (the device actor) while it handles vhost-user requests and drains rings.</summary>
public interface IVsockDeviceEvents
{
    /// <summary>Ring <paramref name="index"/> is running: watch <paramref name="kickFd"/> (null: the VMM polls).</summary>
    void RingReady(int index, SafeFileHandle? kickFd);

    /// <summary>Ring <paramref name="index"/> stopped (GET_VRING_BASE or disable): stop watching its kick fd.</summary>
    void RingStopped(int index);

    /// <summary>The VMM reset the device or went away: every connection of this VM is gone.</summary>
    void DeviceReset();
}
