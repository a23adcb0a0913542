using Akka.Actor;
using Akka.Event;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Connections;

namespace Vsock.Actors.Connections;

/// <summary>
/// A guest REQUEST to the host: connects to <c>uds-path_PORT</c> (or host AF_VSOCK <c>forward-cid:PORT</c>), then hands
/// the socket to the stream, which answers RESPONSE; a refused connect answers RST at once (the reference leaves the
/// guest to time out after 2 s). A unix connect is tried right here, non-blocking, since it completes or fails at
/// once; only one that could wait (a full listen backlog, or AF_VSOCK) runs on a pool thread, never on the VM's loop.
/// </summary>
public sealed class GuestInitiatedConnection : ConnectionActor
{
    private readonly HostEndpoint _endpoint;
    private Task<SafeFileHandle>? _connect;

    public GuestInitiatedConnection(HostStream stream, ConnectionSettings settings, HostEndpoint endpoint) : base(stream, settings)
    {
        _endpoint = endpoint;
    }

    public static Props Props(HostStream stream, ConnectionSettings settings, HostEndpoint endpoint) =>
        Akka.Actor.Props.Create<GuestInitiatedConnection>(stream, settings, endpoint); // no expression tree: one per connection

    /// <summary>The outcome of the connect: a socket, or why there is none.</summary>
    private sealed record ConnectResult(SafeFileHandle? Socket, string? Error) : INoSerializationVerificationNeeded, IDeadLetterSuppression;

    protected override void PreStart()
    {
        if (_endpoint.TryConnectNow(out var socket, out var error))
        {
            OnSetupMessage(new ConnectResult(socket, error));
            return;
        }
        _connect = _endpoint.ConnectAsync(Settings.HostConnectTimeout);
        _connect.ContinueWith(
            t => t.IsCompletedSuccessfully
                ? new ConnectResult(t.Result, null)
                : new ConnectResult(null, t.Exception?.InnerException?.Message ?? "cancelled"),
            TaskContinuationOptions.ExecuteSynchronously).PipeTo(Self);
    }

    protected override void OnSetupMessage(object message)
    {
        switch (message)
        {
            case ConnectResult { Socket: { } socket }:
                Stream.OnConnected(socket); // owns it now (and closes it if the guest gave up meanwhile)
                if (Stream.Has(StreamStatus.Finished))
                    return;
                WatchSocket();
                BecomeConnected();
                break;
            case ConnectResult failed:
                Log.Debug("{0}: connect to {1} failed ({2}); resetting the guest's REQUEST", Stream.Key, _endpoint, failed.Error);
                Stream.Reset();
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    protected override void PostStop()
    {
        // A connect still under way when we stop: its socket has no owner left, so close it when it comes. (If it
        // came and the stream took it, the stream closed it already; a second Dispose does nothing.)
        _connect?.ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully)
                t.Result.Dispose();
        }, TaskContinuationOptions.ExecuteSynchronously);
        base.PostStop();
    }
}
