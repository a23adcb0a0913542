using Akka.Actor;
using Akka.Event;
using Vsock.Device.Connections;
using static Vsock.Actors.Protocol.DeviceProtocol;

namespace Vsock.Actors.Connections;

/// <summary>
/// A host AF_VSOCK client of a <c>forward-listen</c> port: forwarded to the same port of the guest at once, seen as
/// coming from CID 2 (no CONNECT line, no OK line).
/// </summary>
public sealed class ForwardedConnection : ConnectionActor
{
    private readonly uint _guestPort;

    public ForwardedConnection(HostStream stream, ConnectionSettings settings, uint guestPort) : base(stream, settings)
    {
        _guestPort = guestPort;
    }

    public static Props Props(HostStream stream, ConnectionSettings settings, uint guestPort) =>
        Akka.Actor.Props.Create<ForwardedConnection>(stream, settings, guestPort); // no expression tree: one per connection

    protected override void PreStart()
    {
        WatchSocket();
        Device.Tell(new OpenToGuest(_guestPort));
    }

    protected override void OnSetupMessage(object message)
    {
        switch (message)
        {
            case OpenedToGuest:
                StartDeadline(Settings.GuestResponseTimeout);
                BecomeConnected();
                break;
            case OpenRefused refused:
                Log.Info("forwarded connection to guest port {0} refused: {1}", _guestPort, refused.Reason);
                Context.Stop(Self);
                break;
            default:
                Unhandled(message);
                break;
        }
    }
}
