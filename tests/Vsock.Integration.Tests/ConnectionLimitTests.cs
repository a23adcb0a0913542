using System.Net.Sockets;
using Vsock.Testing;

namespace Vsock.Integration.Tests;

/// <summary>
/// <c>max-connections</c>: beyond it a guest REQUEST (to the host or a sibling) gets an RST, a sibling's REQUEST is
/// refused, and a new host client is closed at once; a connection that ends makes room again, and other VMs are
/// not limited by this one's count.
/// </summary>
public sealed class ConnectionLimitTests
{
    private const int Max = 4;

    [Fact]
    public async Task Guest_requests_beyond_the_limit_are_reset_and_room_comes_back_when_one_closes()
    {
        await using var daemon = await InProcessDaemon.StartAsync(vmCount: 2, vm => vm with { MaxConnections = Max });
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        await using var other = SyntheticGuest.Connect(daemon[1].Socket);
        using var siblingListener = other.Listen(5000); // so a refusal below is the limit's, not "nobody listens"
        using var cts = new CancellationTokenSource(Scenario.Timeout);
        var port = Scenario.NextPort();
        using var listener = HostVsock.Listen(daemon[0].UdsPath!, port);

        var streams = new List<GuestStream>();
        var hosts = new List<Socket>();
        for (var i = 0; i < Max; i++)
        {
            streams.Add(await guest.ConnectAsync(2, port, Scenario.Timeout, cts.Token));
            hosts.Add(await listener.AcceptAsync(cts.Token));
        }

        // One more: RST at once, to the host and to a sibling alike.
        await Assert.ThrowsAsync<GuestConnectionRefusedException>(() => guest.ConnectAsync(2, port, Scenario.Timeout, cts.Token));
        await Assert.ThrowsAsync<GuestConnectionRefusedException>(() => guest.ConnectAsync(4, 5000, Scenario.Timeout, cts.Token));

        // The streams at the limit still work.
        await streams[0].WriteAsync("ping"u8.ToArray(), cts.Token);
        var got = new byte[4];
        Assert.Equal(4, await hosts[0].ReceiveAsync(got, SocketFlags.None, cts.Token));

        // One closes: room for one more, and only one.
        await streams[^1].CloseAsync();
        hosts[^1].Dispose();
        GuestStream again = null!;
        await Scenario.WaitUntilAsync(() => TryConnect(guest, port, out again), cts.Token);
        using var againHost = await listener.AcceptAsync(cts.Token);
        await Assert.ThrowsAsync<GuestConnectionRefusedException>(() => guest.ConnectAsync(2, port, Scenario.Timeout, cts.Token));

        // The other VM of the daemon has its own count.
        await Scenario.VmServesAsync(other, daemon[1].UdsPath!);

        Scenario.AssertClean(guest);
        foreach (var host in hosts)
            host.Dispose();
    }

    [Fact]
    public async Task Host_clients_beyond_the_limit_are_closed_at_once_even_before_their_connect_line()
    {
        await using var daemon = await InProcessDaemon.StartAsync(vmCount: 1, vm => vm with { MaxConnections = 2 });
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        using var cts = new CancellationTokenSource(Scenario.Timeout);
        var port = Scenario.NextPort();
        using var listener = guest.Listen(port);

        // One established stream, and one client that has not sent its CONNECT line yet: both count.
        using var first = await HostVsock.ConnectAsync(daemon[0].UdsPath!, port, Scenario.Timeout);
        var accepted = await listener.AcceptAsync(cts.Token);
        using var silent = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await silent.ConnectAsync(new UnixDomainSocketEndPoint(daemon[0].UdsPath!), cts.Token);

        // The third is closed without an answer, as when the guest driver is not running (EOF, or a reset if
        // its CONNECT line was still unread when the daemon closed it, or EPIPE if it was closed before the line went).
        Assert.False(TryHostConnect(daemon[0].UdsPath!, port, out var _));

        // The silent client gives up: room again.
        silent.Close();
        await Scenario.WaitUntilAsync(() => TryHostConnect(daemon[0].UdsPath!, port, out var s) && Dispose(s), cts.Token);
        await accepted.CloseAsync();
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task A_siblings_request_beyond_the_limit_is_refused()
    {
        await using var daemon = await InProcessDaemon.StartAsync(vmCount: 2, vm => vm.GuestCid == 4 ? vm with { MaxConnections = 1 } : vm);
        await using var a = SyntheticGuest.Connect(daemon[0].Socket);
        await using var b = SyntheticGuest.Connect(daemon[1].Socket);
        using var cts = new CancellationTokenSource(Scenario.Timeout);
        using var listener = b.Listen(5000);

        var first = await a.ConnectAsync(4, 5000, Scenario.Timeout, cts.Token);
        var served = await listener.AcceptAsync(cts.Token);
        // VM 4 holds its one connection: a second REQUEST from its sibling is refused by VM 4's device.
        await Assert.ThrowsAsync<GuestConnectionRefusedException>(() => a.ConnectAsync(4, 5000, Scenario.Timeout, cts.Token));

        await first.WriteAsync("hi"u8.ToArray(), cts.Token);
        Assert.Equal("hi"u8.ToArray(), await served.ReadExactlyAsync(2, cts.Token));
        await first.CloseAsync();
        Scenario.AssertClean(a);
        Scenario.AssertClean(b);
    }

    private static bool TryConnect(SyntheticGuest guest, uint port, out GuestStream stream)
    {
        try
        {
            stream = guest.ConnectAsync(2, port, Scenario.Timeout).GetAwaiter().GetResult();
            return true;
        }
        catch (GuestConnectionRefusedException)
        {
            stream = null!;
            return false;
        }
    }

    private static bool TryHostConnect(string udsPath, uint port, out Socket socket)
    {
        socket = null!;
        try
        {
            var (s, reply) = HostVsock.SendConnectAsync(udsPath, port, Scenario.Timeout).GetAwaiter().GetResult();
            if (reply.StartsWith("OK", StringComparison.Ordinal))
            {
                socket = s;
                return true;
            }
            Assert.Equal("", reply);
            s.Dispose();
            return false;
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown)
        {
            return false;
        }
    }

    private static bool Dispose(Socket socket)
    {
        socket.Dispose();
        return true;
    }
}
