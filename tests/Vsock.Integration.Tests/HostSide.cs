using System.Net.Sockets;
using System.Text;

namespace Vsock.Integration.Tests;

/// <summary>The host applications' side: unix sockets on the VM's uds-path, as Firecracker-style hybrid vsock defines them.</summary>
public static class HostSide
{
    /// <summary>Connects to <paramref name="udsPath"/> and sends <c>CONNECT port\n</c>; returns the socket and the reply line.</summary>
    public static async Task<(Socket Socket, string Reply)> ConnectAsync(string udsPath, uint port, TimeSpan timeout)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            using var cts = new CancellationTokenSource(timeout);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(udsPath), cts.Token);
            await socket.SendAsync(Encoding.ASCII.GetBytes($"CONNECT {port}\n"), cts.Token);
            var line = await ReadLineAsync(socket, cts.Token);
            return (socket, line);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Reads up to and including '\n' one byte at a time, so no stream data after the line is consumed. "" at EOF.</summary>
    public static async Task<string> ReadLineAsync(Socket socket, CancellationToken cancellationToken)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (true)
        {
            var n = await socket.ReceiveAsync(one, cancellationToken);
            if (n == 0)
                return line.ToString();
            line.Append((char)one[0]);
            if (one[0] == '\n')
                return line.ToString();
        }
    }

    /// <summary>Listens where the daemon connects for guest-initiated connections to host port <paramref name="port"/>: <c>uds_path + "_" + port</c>.</summary>
    public static Socket Listen(string udsPath, uint port)
    {
        var path = $"{udsPath}_{port}";
        File.Delete(path);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(path));
        socket.Listen(64);
        return socket;
    }

    public static async Task SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var n = await socket.SendAsync(data, cancellationToken);
            data = data[n..];
        }
    }

    /// <summary>Reads until EOF; returns everything.</summary>
    public static async Task<byte[]> ReadToEndAsync(Socket socket, CancellationToken cancellationToken)
    {
        var all = new MemoryStream();
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var n = await socket.ReceiveAsync(buffer, cancellationToken);
            if (n == 0)
                return all.ToArray();
            all.Write(buffer, 0, n);
        }
    }

    /// <summary>True when the peer closes the socket (EOF or reset) within <paramref name="timeout"/>.</summary>
    public static async Task<bool> WaitForCloseAsync(Socket socket, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[4096];
        try
        {
            while (await socket.ReceiveAsync(buffer, cts.Token) > 0)
            {
            }
            return true;
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
