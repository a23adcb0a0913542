using Akka.Event;
using Vsock.Device.Diagnostics;

namespace Vsock.Actors.Device;

/// <summary>Routes the device core's log lines to the owning actor's Akka logger.</summary>
internal sealed class AkkaDeviceLog(ILoggingAdapter log) : IDeviceLog
{
    public void Debug(string message) => log.Debug(message);
    public void Info(string message) => log.Info(message);
    public void Warning(string message) => log.Warning(message);
}
