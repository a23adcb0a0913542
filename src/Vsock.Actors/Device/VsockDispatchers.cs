namespace Vsock.Actors.Device;

/// <summary>Dispatcher ids defined in <c>hocon/vsock.hocon</c>.</summary>
public static class VsockDispatchers
{
    public const string Device = "vsock.device-dispatcher";
}
