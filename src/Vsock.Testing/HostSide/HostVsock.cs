using System.Net.Sockets;
using System.Text;
using Vsock.Device.Interop;

namespace Vsock.Testing.HostSide;

/// <summary>The guest refused a host-initiated connection: the daemon closed (or reset) the socket without "OK".</summary>
public sealed class GuestRefusedException(string message) : IOException(message);

/// <summary>
/// The host applications' side of the daemon's unix-socket protocol (the reference's "hybrid vsock", as Firecracker
/// defines it). Host-initiated: connect to <c>uds-path</c>, write <c>CONNECT &lt;port&gt;\n</c>, read exactly
/// <c>OK &lt;port&gt;\n</c>, then a plain byte stream (<see cref="ConnectAsync(string, uint, CancellationToken)"/>); for SOCK_SEQPACKET the same
/// two lines are one message each on <c>uds-path_seqpacket</c> (<see cref="ConnectSeqpacketAsync"/>).
/// Guest-initiated: the daemon connects to <c>uds-path_&lt;port&gt;</c>, where the host listens
/// (<see cref="Listen"/>). Every test project and the benchmark use these, so the protocol is written once.
/// </summary>
public static class HostVsock
{
    /// <summary>Attempts at a unix connect that the listener's full backlog refuses with EAGAIN, 1 ms apart.</summary>
    private const int BacklogRetries = 1000;

    /// <summary>Longer than any <c>OK &lt;port&gt;</c> line (a u32 port has at most 10 digits).</summary>
    private const int MaxReplyLine = 64;

    /// <summary>Where the daemon connects guest-initiated connections to host port <paramref name="port"/>.</summary>
    public static string PortPath(string udsPath, uint port) => $"{udsPath}_{port}";

    /// <summary>Where host SOCK_SEQPACKET clients connect (the CONNECT and OK lines are one message each).</summary>
    public static string SeqpacketPath(string udsPath) => udsPath + "_seqpacket";

    /// <summary>
    /// Opens a stream to guest port <paramref name="port"/> through the daemon. Throws
    /// <see cref="GuestRefusedException"/> if the daemon closes or resets the socket instead of answering OK, and
    /// <see cref="IOException"/> for any other answer. No data is sent before OK arrives, and the OK line is read
    /// byte by byte, so no stream data after it is consumed.
    /// </summary>
    public static async Task<Socket> ConnectAsync(string udsPath, uint port, CancellationToken cancellationToken)
    {
        Socket socket;
        string reply;
        try
        {
            (socket, reply) = await SendConnectAsync(udsPath, port, cancellationToken);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown)
        {
            // Reset, or closed before the CONNECT line went (EPIPE): refused all the same.
            throw new GuestRefusedException($"CONNECT {port}: the daemon closed the connection without OK ({e.SocketErrorCode})");
        }
        try
        {
            CheckReply(port, reply, seqpacket: false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary><see cref="ConnectAsync(string, uint, CancellationToken)"/> within <paramref name="timeout"/>.</summary>
    public static async Task<Socket> ConnectAsync(string udsPath, uint port, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        return await ConnectAsync(udsPath, port, cts.Token);
    }

    /// <summary><see cref="SendConnectAsync(string, uint, CancellationToken)"/> within <paramref name="timeout"/>.</summary>
    public static async Task<(Socket Socket, string Reply)> SendConnectAsync(string udsPath, uint port, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        return await SendConnectAsync(udsPath, port, cts.Token);
    }

    /// <summary>
    /// Connects to <paramref name="udsPath"/>, sends <c>CONNECT port\n</c> and returns the socket with the reply line
    /// as it came, <c>'\n'</c> included; <c>""</c> if the daemon closed the socket first. For tests of the refusals
    /// themselves; <see cref="ConnectAsync(string, uint, CancellationToken)"/> checks the answer.
    /// </summary>
    public static async Task<(Socket Socket, string Reply)> SendConnectAsync(string udsPath, uint port, CancellationToken cancellationToken)
    {
        var socket = await ConnectUnixAsync(udsPath, SocketType.Stream, cancellationToken);
        try
        {
            await socket.SendAllAsync(ConnectLine(port), cancellationToken);
            var line = await socket.ReadLineAsync(MaxReplyLine, cancellationToken);
            return (socket, line is null ? "" : line + "\n");
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens a SOCK_SEQPACKET stream to guest port <paramref name="port"/> through
    /// <see cref="SeqpacketPath"/>: the first message is <c>CONNECT port\n</c>, the answer one message
    /// <c>OK port\n</c>; from then on each message is one guest message. Throws as <see cref="ConnectAsync(string, uint, CancellationToken)"/> does.
    /// </summary>
    public static async Task<Socket> ConnectSeqpacketAsync(string udsPath, uint port, CancellationToken cancellationToken)
    {
        var socket = await ConnectUnixAsync(SeqpacketPath(udsPath), SocketType.Seqpacket, cancellationToken);
        try
        {
            var reply = new byte[MaxReplyLine];
            int n;
            try
            {
                await socket.SendAsync(ConnectLine(port), SocketFlags.None, cancellationToken);
                n = await socket.ReceiveAsync(reply, SocketFlags.None, cancellationToken);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown)
            {
                // Reset, or closed before the CONNECT message went (EPIPE): refused all the same.
                throw new GuestRefusedException($"CONNECT {port} (SEQPACKET): the daemon closed the connection without OK ({e.SocketErrorCode})");
            }
            CheckReply(port, Encoding.ASCII.GetString(reply, 0, n), seqpacket: true);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// <see cref="ConnectAsync(string, uint, CancellationToken)"/> with synchronous calls only, for streams that then move data with blocking
    /// Send/Receive: a .NET socket that ever ran an async operation stays non-blocking and emulates blocking calls
    /// through the runtime's socket thread (an extra thread wake-up per call), which a benchmark would measure as the
    /// daemon's cost.
    /// </summary>
    public static Socket ConnectBlocking(string udsPath, uint port)
    {
        var socket = NewUnix(SocketType.Stream);
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    socket.Connect(new UnixDomainSocketEndPoint(udsPath));
                    break;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.TryAgain && attempt < BacklogRetries)
                {
                    socket.Dispose();
                    socket = NewUnix(SocketType.Stream);
                    Thread.Sleep(1);
                }
            }
            socket.Send(ConnectLine(port));
            var line = new StringBuilder();
            var one = new byte[1];
            while (line.Length <= MaxReplyLine && socket.Receive(one) == 1)
            {
                line.Append((char)one[0]);
                if (one[0] == '\n')
                    break;
            }
            CheckReply(port, line.ToString(), seqpacket: false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Listens on <see cref="PortPath"/> (a stale file there is removed first), where the daemon connects the guest's
    /// connections to host port <paramref name="port"/>; <paramref name="kind"/> must match the guest's socket type, or
    /// the daemon refuses the guest.
    /// </summary>
    public static Socket Listen(string udsPath, uint port, SocketKind kind = SocketKind.Stream, int backlog = 128) =>
        ListenAt(PortPath(udsPath, port), kind, backlog);

    /// <summary>A unix listener at exactly <paramref name="path"/> (a stale file there is removed first).</summary>
    public static Socket ListenAt(string path, SocketKind kind = SocketKind.Stream, int backlog = 128)
    {
        File.Delete(path);
        var socket = NewUnix(kind == SocketKind.Seqpacket ? SocketType.Seqpacket : SocketType.Stream);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(backlog);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static Socket NewUnix(SocketType type) => new(AddressFamily.Unix, type, ProtocolType.Unspecified);

    private static byte[] ConnectLine(uint port) => Encoding.ASCII.GetBytes($"CONNECT {port}\n");

    private static void CheckReply(uint port, string reply, bool seqpacket)
    {
        var what = seqpacket ? $"CONNECT {port} (SEQPACKET)" : $"CONNECT {port}";
        if (reply.Length == 0)
            throw new GuestRefusedException($"{what}: the daemon closed the connection without OK");
        if (reply != $"OK {port}\n")
            throw new IOException($"{what}: expected 'OK {port}\\n', got '{reply.ReplaceLineEndings("\\n")}'");
    }

    /// <summary>A unix connect that waits out a full accept backlog (EAGAIN on a non-blocking connect) for up to a second.</summary>
    private static async Task<Socket> ConnectUnixAsync(string path, SocketType type, CancellationToken cancellationToken)
    {
        var socket = NewUnix(type);
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
                    return socket;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.TryAgain && attempt < BacklogRetries)
                {
                    socket.Dispose();
                    socket = NewUnix(type);
                    await Task.Delay(1, cancellationToken);
                }
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
