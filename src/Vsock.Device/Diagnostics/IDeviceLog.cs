namespace Vsock.Device.Diagnostics;

/// <summary>
/// Logging seam for the device core (which has no logging framework of its own); the actor layer
/// adapts it to Akka's logger.
/// </summary>
public interface IDeviceLog
{
    void Debug(string message);
    void Info(string message);
    void Warning(string message);
}

public sealed class NullDeviceLog : IDeviceLog
{
    public static NullDeviceLog Instance { get; } = new();
    public void Debug(string message) { }
    public void Info(string message) { }
    public void Warning(string message) { }
}
