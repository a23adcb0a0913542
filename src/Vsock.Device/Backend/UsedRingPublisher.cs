using Vsock.Device.Interop;
using Vsock.Device.Virtio;

namespace Vsock.Device.Backend;

/// <summary>How an RX or TX turn ends: its used elements become visible to the guest, then the guest's interrupt
/// goes out if it asked for one (EVENT_IDX or flags), at most once per turn.</summary>
internal static class UsedRingPublisher
{
    /// <summary>Publishes <paramref name="queue"/>'s used elements and signals <paramref name="call"/> if the guest
    /// wants to hear of them (asked even without a call fd: the question moves the ring's notification state on).
    /// True if the guest was signalled.</summary>
    public static bool PublishAndNotify(SplitQueue queue, EventFd? call)
    {
        queue.PublishUsed();
        if (!queue.NeedsNotification() || call is null)
            return false;
        call.Signal();
        return true;
    }
}
