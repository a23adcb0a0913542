using Akka.Actor;
using Vsock.Device.Backend;
using Vsock.Device.Connections;
using Vsock.Device.Threading;
using static Vsock.Actors.Protocol.DeviceProtocol;

namespace Vsock.Actors.Device;

/// <summary>
/// Polls a VM's rings while its event loop is busy or spinning, instead of taking a kick per batch: TX turns leave
/// the guest's notifications suppressed (EVENT_IDX: avail_event is not advanced; otherwise NO_NOTIFY stays set), the
/// loop calls <see cref="Poll"/> between its work and while it spins, and <see cref="PrepareToSleep"/> re-arms them
/// right before the loop blocks, then looks once more, so no chain is left without a kick or a poll. On each side of
/// a round trip that saves the guest's kick (a vmexit or system call) and the daemon's wake-up from it.
/// Runs on the VM's loop thread, like the device that owns it.
/// </summary>
internal sealed class RingPoller(IActorRef device, RxScheduler scheduler) : ILoopIdleHook
{
    private bool _txRequested;

    /// <summary>The backend of the VMM being served, if any.</summary>
    public VsockBackend? Backend { get; set; }

    /// <summary>A TX turn starts (from a kick, a poll or a re-sent drain): the next new chain asks for another.</summary>
    public void TxTurnStarted() => _txRequested = false;

    public bool Poll()
    {
        if (Backend is not { } backend)
            return false;
        var found = false;
        if (!_txRequested && backend.Pending(VsockBackend.TxQueueIndex) > 0)
        {
            _txRequested = true;
            device.Tell(DrainTx.Instance);
            found = true;
        }
        if (scheduler.WaitingForBuffers && backend.Pending(VsockBackend.RxQueueIndex) > 0)
        {
            scheduler.RequestTurn();
            found = true;
        }
        return found || AskTurnIfMemoryLost(backend);
    }

    /// <summary>
    /// A poll or a re-arm may be the first access to memory the VMM truncated: the SIGBUS guard repairs it and the
    /// ring reads as broken, so nothing above asks for a turn, and a guest whose VMM did that may never kick. A TX
    /// turn is asked for instead; it finds the memory lost and ends the session (DeviceActor.RunTx).
    /// </summary>
    private bool AskTurnIfMemoryLost(VsockBackend backend)
    {
        if (_txRequested || backend.Memory.PoisonedRegion is null)
            return false;
        _txRequested = true;
        device.Tell(DrainTx.Instance);
        return true;
    }

    public bool PrepareToSleep()
    {
        if (Backend is not { } backend || _txRequested)
            return true; // a TX turn is queued: the loop runs it before it could sleep
        if (!backend.ArmTxNotification())
            return !AskTurnIfMemoryLost(backend);
        // Chains came in between: the guest may not kick for them.
        _txRequested = true;
        device.Tell(DrainTx.Instance);
        return false;
    }
}
