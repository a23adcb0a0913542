namespace Vsock.Device.Virtio;

public enum PopStatus
{
    /// <summary>No chain is available (or the ring is broken: see <see cref="SplitQueue.IsBroken"/>).</summary>
    Empty,
    /// <summary>A valid chain was popped.</summary>
    Chain,
    /// <summary>A chain was popped and rejected; it has already been added to the used ring with length 0.</summary>
    Malformed,
}
