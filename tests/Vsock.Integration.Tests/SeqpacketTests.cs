using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Vsock.Device.Interop;
using Vsock.Testing;
using Vsock.Testing.Packets;

namespace Vsock.Integration.Tests;

/// <summary>
/// SOCK_SEQPACKET end to end through the daemon in process (issue 12): guest-initiated to <c>uds-path_PORT</c>,
/// host-initiated through <c>uds-path_seqpacket</c>, between sibling guests; every message's length and bytes
/// checked at the other end, type mismatches refused at once, credit kept both ways, hostile guests contained.
/// </summary>
public sealed class SeqpacketTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>The lengths the issue names, then seeded random ones.</summary>
    private static IEnumerable<int> Lengths(int randomCount, int seed)
    {
        int[] named = [1, 100, 4095, 4096, 4097, 65536, 65537, 200000];
        var random = new Random(seed);
        return named.Concat(Enumerable.Range(0, randomCount).Select(_ => random.Next(1, 200001)));
    }

    private static async Task<byte[]> ReceiveMessageAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[300_000];
        var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
        return buffer.AsSpan(0, n).ToArray();
    }

    private static async Task<byte[]> ReceiveGuestMessageAsync(GuestStream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[300_000];
        var message = await stream.ReceiveMessageAsync(buffer, cancellationToken);
        Assert.False(message.EndOfStream, "end of stream instead of a message");
        Assert.False(message.Truncated);
        return buffer.AsSpan(0, message.Length).ToArray();
    }

    /// <summary>
    /// A guest SEQPACKET connection to a host listener on <c>uds-path_PORT</c> (a fresh port): the host's accepted
    /// socket, the guest's stream and the port. Disposing it closes the host socket.
    /// </summary>
    private static async Task<GuestToHost> GuestConnectsToHostAsync(InProcessDaemon daemon, SyntheticGuest guest, CancellationToken cancellationToken)
    {
        var port = Scenario.NextPort();
        using var listener = HostVsock.Listen(daemon[0].UdsPath!, port, SocketKind.Seqpacket);
        var connect = guest.ConnectAsync(2, port, TimeSpan.FromSeconds(5), cancellationToken, SocketKind.Seqpacket);
        var host = await listener.AcceptAsync(cancellationToken);
        try
        {
            return new GuestToHost(host, await connect, port);
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    private sealed record GuestToHost(Socket Host, GuestStream Stream, uint Port) : IDisposable
    {
        public void Dispose() => Host.Dispose();
    }

    [Fact]
    public async Task Guest_initiated_messages_of_every_size_are_echoed_by_a_host_seqpacket_listener_whole()
    {
        await using var daemon = await InProcessDaemon.StartAsync(1, vm => vm with { TxBufferSize = 262144 });
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        using var cts = new CancellationTokenSource(Timeout);
        using var connected = await GuestConnectsToHostAsync(daemon, guest, cts.Token);
        var (host, stream, _) = connected;
        var echo = Task.Run(async () =>
        {
            while (true)
            {
                var m = await ReceiveMessageAsync(host, cts.Token);
                if (m.Length == 0)
                    return;
                await host.SendAsync(m, SocketFlags.None, cts.Token);
            }
        });

        var seed = 0;
        foreach (var length in Lengths(60, 12))
        {
            var message = TestPattern.RandomBytes(length, ++seed);
            await stream.SendMessageAsync(message, cancellationToken: cts.Token);
            var back = await ReceiveGuestMessageAsync(stream, cts.Token);
            Assert.Equal(length, back.Length);
            Assert.True(message.AsSpan().SequenceEqual(back), $"message of {length} bytes came back different");
        }
        stream.ShutdownWrite();
        await echo;
        Scenario.AssertClean(guest);
        // 200,000 bytes over 4 KiB RX buffers: one message over many packets, EOM only on the last.
        var rw = guest.Received.Where(p => p.Header.Operation == VsockOp.Rw).ToList();
        Assert.All(rw, p => Assert.Equal(VsockWire.TypeSeqpacket, p.Header.Type));
        Assert.Equal(68, rw.Count(p => (p.Header.Flags & VsockWire.SeqEom) != 0));
    }

    [Fact]
    public async Task Host_initiated_through_uds_path_seqpacket_gets_ok_as_a_message_and_every_message_echoed()
    {
        await using var daemon = await InProcessDaemon.StartAsync(1, vm => vm with { TxBufferSize = 262144 });
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        using var cts = new CancellationTokenSource(Timeout);
        var port = Scenario.NextPort();
        using var listener = guest.Listen(port, SocketKind.Seqpacket);
        using var host = await HostVsock.ConnectSeqpacketAsync(daemon[0].UdsPath!, port, cts.Token);
        var stream = await listener.AcceptAsync(cts.Token);
        var echo = Task.Run(async () =>
        {
            var buffer = new byte[300_000];
            while (true)
            {
                var m = await stream.ReceiveMessageAsync(buffer, cts.Token);
                if (m.EndOfStream)
                    return;
                await stream.SendMessageAsync(buffer.AsMemory(0, m.Length), cancellationToken: cts.Token);
            }
        });

        var seed = 100;
        foreach (var length in Lengths(60, 13))
        {
            var message = TestPattern.RandomBytes(length, ++seed);
            await host.SendAsync(message, SocketFlags.None, cts.Token);
            var back = await ReceiveMessageAsync(host, cts.Token);
            Assert.Equal(length, back.Length);
            Assert.True(message.AsSpan().SequenceEqual(back), $"message of {length} bytes came back different");
        }
        host.Shutdown(SocketShutdown.Send);
        await echo;
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task Messages_sent_ahead_of_a_slow_reader_keep_their_boundaries_and_the_guest_s_credit()
    {
        await using var daemon = await InProcessDaemon.StartAsync(1, vm => vm with { TxBufferSize = 262144 });
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        using var cts = new CancellationTokenSource(Timeout);
        using var connected = await GuestConnectsToHostAsync(daemon, guest, cts.Token);
        var (host, stream, _) = connected;
        host.SendBufferSize = 4 << 20;

        // Host → guest: 40 messages of up to 150 KB sent at once; the guest's 256 KiB buffer holds one or two.
        var lengths = Lengths(32, 14).Select(l => Math.Min(l, 150_000)).ToList();
        var send = Task.Run(async () =>
        {
            var seed = 200;
            foreach (var length in lengths)
                await host.SendAsync(TestPattern.RandomBytes(length, ++seed), SocketFlags.None, cts.Token);
        });
        // Guest → host at the same time, without the host reading until the guest is done.
        var guestSend = Task.Run(async () =>
        {
            var seed = 300;
            foreach (var length in lengths)
                await stream.SendMessageAsync(TestPattern.RandomBytes(length, ++seed), cancellationToken: cts.Token);
        });
        // Both readers start late, so both directions back up: the host socket, our TX buffer, the guest's credit.
        var hostRead = Task.Run(async () =>
        {
            await Task.Delay(500, cts.Token);
            var seed = 300;
            foreach (var length in lengths)
                Assert.Equal(TestPattern.RandomBytes(length, ++seed), await ReceiveMessageAsync(host, cts.Token));
        });
        await Task.Delay(500, cts.Token);
        var s = 200;
        foreach (var length in lengths)
            Assert.Equal(TestPattern.RandomBytes(length, ++s), await ReceiveGuestMessageAsync(stream, cts.Token));
        await Task.WhenAll(send, guestSend, hostRead);
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task A_listener_of_the_other_type_refuses_at_once_every_way()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        var uds = daemon[0].UdsPath!;
        using var cts = new CancellationTokenSource(Timeout);

        // Guest SEQPACKET → host STREAM listener, and guest STREAM → host SEQPACKET listener: RST at once.
        var p1 = Scenario.NextPort();
        using (HostVsock.Listen(uds, p1))
            await AssertRefusedQuickly(() => guest.ConnectAsync(2, p1, TimeSpan.FromSeconds(5), cts.Token, SocketKind.Seqpacket));
        var p2 = Scenario.NextPort();
        using (HostVsock.Listen(uds, p2, SocketKind.Seqpacket))
            await AssertRefusedQuickly(() => guest.ConnectAsync(2, p2, TimeSpan.FromSeconds(5), cts.Token));

        // Host SEQPACKET → guest STREAM listener, and host STREAM → guest SEQPACKET listener: the client is closed at once.
        var p3 = Scenario.NextPort();
        using (guest.Listen(p3))
        {
            using var host = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
            await host.ConnectAsync(new UnixDomainSocketEndPoint(uds + "_seqpacket"), cts.Token);
            var started = Stopwatch.StartNew();
            await host.SendAsync(Encoding.ASCII.GetBytes($"CONNECT {p3}\n"), SocketFlags.None, cts.Token);
            Assert.Empty(await ReceiveMessageAsync(host, cts.Token));
            Assert.InRange(started.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(1));
        }
        var p4 = Scenario.NextPort();
        using (guest.Listen(p4, SocketKind.Seqpacket))
        {
            var started = Stopwatch.StartNew();
            var (host, reply) = await HostVsock.SendConnectAsync(uds, p4, Timeout);
            using (host)
                Assert.Equal("", reply);
            Assert.InRange(started.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(1));
        }
        await Scenario.VmServesAsync(guest, uds);
        Scenario.AssertClean(guest);
    }

    private static async Task AssertRefusedQuickly(Func<Task<GuestStream>> connect)
    {
        var started = Stopwatch.StartNew();
        await Assert.ThrowsAsync<GuestConnectionRefusedException>(connect);
        Assert.InRange(started.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task A_guest_that_did_not_negotiate_seqpacket_gets_rst_and_the_host_client_is_closed()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket, new SyntheticGuestOptions { Seqpacket = false });
        using var cts = new CancellationTokenSource(Timeout);
        var port = Scenario.NextPort();
        using var listener = HostVsock.Listen(daemon[0].UdsPath!, port, SocketKind.Seqpacket);
        guest.SendPacket(guest.MakeHeader(2, 50000, port, VsockOp.Request) with { Type = VsockWire.TypeSeqpacket });
        var rst = await guest.WaitForPacketAsync(p => p.Header.DstPort == 50000, TimeSpan.FromSeconds(5));
        Assert.Equal(VsockOp.Rst, rst.Header.Operation);
        Assert.Equal(VsockWire.TypeSeqpacket, rst.Header.Type);

        using var host = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        await host.ConnectAsync(new UnixDomainSocketEndPoint(daemon[0].UdsPath + "_seqpacket"), cts.Token);
        try
        {
            await host.SendAsync(Encoding.ASCII.GetBytes($"CONNECT {port}\n"), SocketFlags.None, cts.Token);
        }
        catch (SocketException)
        {
            // closed before the line went: as good
        }
        Assert.True(await host.WaitForCloseAsync(TimeSpan.FromSeconds(1)));
        await Scenario.VmServesAsync(guest, daemon[0].UdsPath!);
    }

    [Fact]
    public async Task A_host_message_larger_than_the_guest_s_buffer_resets_the_stream()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket, new SyntheticGuestOptions { BufAlloc = 65536 });
        using var cts = new CancellationTokenSource(Timeout);
        using var connected = await GuestConnectsToHostAsync(daemon, guest, cts.Token);
        var (host, stream, _) = connected;
        await host.SendAsync(new byte[65536], SocketFlags.None, cts.Token);
        Assert.Equal(65536, (await stream.ReceiveMessageAsync(new byte[70000], cts.Token)).Length);
        await host.SendAsync(new byte[65537], SocketFlags.None, cts.Token);
        await Scenario.WaitUntilAsync(() => stream.IsPeerReset, cts.Token);
        Assert.True(await host.WaitForCloseAsync(TimeSpan.FromSeconds(5)));
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task A_guest_that_never_ends_its_message_is_reset_at_its_credit_and_the_host_sees_nothing_of_it()
    {
        await using var daemon = await InProcessDaemon.StartAsync(1, vm => vm with { TxBufferSize = 16384 });
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        using var cts = new CancellationTokenSource(Timeout);
        using var connected = await GuestConnectsToHostAsync(daemon, guest, cts.Token);
        var (host, stream, port) = connected;
        var rw = guest.MakeHeader(2, stream.LocalPort, port, VsockOp.Rw, 8192) with { Type = VsockWire.TypeSeqpacket };
        guest.SendPacket(rw, new byte[8192]);
        guest.SendPacket(rw, new byte[8192]);
        guest.SendPacket(rw with { Len = 1 }, new byte[1]);
        var rst = await guest.WaitForPacketAsync(p => p.Header.Operation == VsockOp.Rst && p.Header.DstPort == stream.LocalPort, TimeSpan.FromSeconds(5));
        Assert.Equal(VsockWire.TypeSeqpacket, rst.Header.Type);
        Assert.Empty(await ReceiveMessageAsync(host, cts.Token)); // EOF: no partial message reached the host
        await Scenario.VmServesAsync(guest, daemon[0].UdsPath!);
    }

    [Fact]
    public async Task Sibling_guests_exchange_messages_whole_with_credit_enforced()
    {
        await using var daemon = await InProcessDaemon.StartAsync(2);
        await using var a = SyntheticGuest.Connect(daemon[0].Socket);
        await using var b = SyntheticGuest.Connect(daemon[1].Socket);
        using var cts = new CancellationTokenSource(Timeout);
        using var listener = b.Listen(6000, SocketKind.Seqpacket);
        var accept = listener.AcceptAsync(cts.Token);
        var client = await a.ConnectAsync(4, 6000, TimeSpan.FromSeconds(2), cts.Token, SocketKind.Seqpacket);
        var server = await accept;
        var echo = Task.Run(async () =>
        {
            var buffer = new byte[300_000];
            while (true)
            {
                var m = await server.ReceiveMessageAsync(buffer, cts.Token);
                if (m.EndOfStream)
                    return;
                await server.SendMessageAsync(buffer.AsMemory(0, m.Length), m.EndOfRecord, cts.Token);
            }
        });
        var seed = 400;
        foreach (var length in Lengths(30, 15))
        {
            var message = TestPattern.RandomBytes(length, ++seed);
            await client.SendMessageAsync(message, endOfRecord: length % 2 == 0, cts.Token);
            var buffer = new byte[300_000];
            var back = await client.ReceiveMessageAsync(buffer, cts.Token);
            Assert.Equal(length, back.Length);
            Assert.Equal(length % 2 == 0, back.EndOfRecord);
            Assert.True(message.AsSpan().SequenceEqual(buffer.AsSpan(0, back.Length)));
        }
        client.ShutdownWrite();
        await echo;
        // EOM and EOR only on the last RX part of a payload split over RX buffers.
        var parts = b.Received.Where(p => p.Header.Operation == VsockOp.Rw && p.Header.SrcCid == 3).ToList();
        Assert.Equal(38, parts.Count(p => (p.Header.Flags & VsockWire.SeqEom) != 0));
        Scenario.AssertClean(a);
        Scenario.AssertClean(b);
    }
}
