using System.Net;
using System.Net.Sockets;
using Vsock.Actors.Settings;

namespace Vsock.Launcher.Cluster;

/// <summary>
/// Binds the cluster endpoint once, and lets go, before the actor system starts. Akka.Remote reports a bind
/// failure as an exception five AggregateExceptions deep, after its own stack traces, from inside the hosted
/// service's start; this gives the operator the one line every other start-up error gets. SO_REUSEADDR, as the
/// transport's own listener: a port still in TIME_WAIT from a node that just stopped is free (a node restarted
/// at once on the same address must rejoin); a port some process listens on is not.
/// </summary>
internal static class ClusterBindProbe
{
    /// <returns>Null when the endpoint can be bound; otherwise why not (the system's message).</returns>
    public static string? Check(ClusterEndpoint endpoint)
    {
        try
        {
            IPAddress address = IPAddress.TryParse(endpoint.Host, out IPAddress? literal)
                ? literal
                : Dns.GetHostAddresses(endpoint.Host).First();
            using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(new IPEndPoint(address, endpoint.Port));
            return null;
        }
        catch (SocketException e)
        {
            return e.Message;
        }
    }
}
