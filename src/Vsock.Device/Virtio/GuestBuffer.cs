namespace Vsock.Device.Virtio;

/// <summary>
/// One descriptor's buffer after indirect tables are expanded. The queue has checked that
/// [<see cref="Address"/>, <see cref="Address"/> + <see cref="Length"/>) lies inside one guest memory region.
/// </summary>
public readonly record struct GuestBuffer(ulong Address, uint Length, bool DeviceWritable);
