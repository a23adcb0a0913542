using Vsock.Device.Diagnostics;

namespace Vsock.Device.Connections;

/// <summary>
/// What a stream needs from the device that runs it (<see cref="RxScheduler"/> implements it). Called on the VM's
/// event-loop thread only, like everything a stream does.
/// </summary>
public interface IStreamHost
{
    /// <summary>The guest's CID: the destination of every packet a stream builds.</summary>
    ulong GuestCid { get; }

    /// <summary>The VM's rate-limited log.</summary>
    DeviceLog Log { get; }

    /// <summary>The VM's counters (metrics).</summary>
    DeviceCounters Counters { get; }

    /// <summary>The stream has something for the guest: give it a turn at the RX ring soon.</summary>
    void ScheduleRx(VsockStream stream);

    /// <summary>The stream is over (<see cref="StreamStatus.Finished"/>): drop it from the table and stop its owner.</summary>
    void StreamFinished(VsockStream stream);
}
