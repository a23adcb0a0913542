namespace Vsock.Device.Connections;

/// <summary>
/// Who owns a <see cref="HostStream"/> (its connection actor). The stream tells it when set-up ends so its set-up
/// deadline can go: a call on the VM's loop thread during the device's turn, so the owner may only do what is safe
/// outside its own turn there (cancel a scheduled message).
/// </summary>
public interface IHostStreamOwner
{
    void OnEstablished();
}
