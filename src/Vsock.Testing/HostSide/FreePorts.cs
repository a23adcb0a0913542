using System.Net;
using System.Net.Sockets;

namespace Vsock.Testing.HostSide;

/// <summary>TCP ports on 127.0.0.1 that were free when chosen (cluster nodes, metrics endpoints).</summary>
public static class FreePorts
{
    /// <summary>
    /// Random ports below the kernel's ephemeral range (outgoing connections take their ports from there, which
    /// could take a node's port between its kill and its restart), each bound once to check it is free; random so
    /// that test runs side by side do not pick the same ones.
    /// </summary>
    public static int[] Take(int count)
    {
        var ports = new List<int>(count);
        while (ports.Count < count)
        {
            var port = Random.Shared.Next(20000, 32000);
            if (ports.Contains(port))
                continue;
            try
            {
                using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                probe.Bind(new IPEndPoint(IPAddress.Loopback, port));
                ports.Add(port);
            }
            catch (SocketException)
            {
                // taken: pick another
            }
        }
        return [.. ports];
    }
}
