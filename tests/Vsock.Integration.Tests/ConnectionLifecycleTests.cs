using System.Diagnostics;
using System.Net.Sockets;
using Vsock.Testing;
using Vsock.Testing.Packets;

namespace Vsock.Integration.Tests;

/// <summary>Refusals, half-close, and the VMM going away.</summary>
public sealed class ConnectionLifecycleTests
{
    [Fact]
    public async Task Guest_connect_to_a_host_port_without_listener_gets_rst_quickly()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<GuestConnectionRefusedException>(() => guest.ConnectAsync(2, 9999, TimeSpan.FromSeconds(5)));
        // Well under Linux's 2 s connect timeout: an answer, not a timeout.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"RST took {clock.ElapsedMilliseconds} ms");
        Assert.Equal(9999u, e.Port);
        await Scenario.VmServesAsync(guest, daemon[0].UdsPath!);
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task Host_connect_to_a_guest_port_without_listener_is_closed()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        var (host, reply) = await HostVsock.SendConnectAsync(daemon[0].UdsPath!, 4444, Scenario.Timeout);
        using var _ = host;
        Assert.Equal("", reply); // closed without an OK line
        var request = await guest.WaitForPacketAsync(p => p.Header.Operation == VsockOp.Request && p.Header.DstPort == 4444, Scenario.Timeout);
        Assert.Equal(2ul, request.Header.SrcCid);
        Assert.Equal(3ul, request.Header.DstCid);
        await Scenario.VmServesAsync(guest, daemon[0].UdsPath!);
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task Guest_half_close_gives_the_host_eof_and_the_host_can_still_send()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        using var cts = new CancellationTokenSource(Scenario.Timeout);
        using var hostListener = HostVsock.Listen(daemon[0].UdsPath!, 6100);
        var stream = await guest.ConnectAsync(2, 6100, Scenario.Timeout, cts.Token);
        using var host = await hostListener.AcceptAsync(cts.Token);

        await stream.WriteAsync("request"u8.ToArray(), cts.Token);
        stream.ShutdownWrite();
        Assert.Equal("request"u8.ToArray(), await host.ReadToEndAsync(cts.Token));

        var answer = TestPattern.RandomBytes(300_000, 8);
        var guestRead = stream.ReadToEndAsync(cts.Token);
        await host.SendAllAsync(answer, cts.Token);
        host.Shutdown(SocketShutdown.Send);
        Assert.Equal(Scenario.Hash(answer), Scenario.Hash(await guestRead));
        await stream.CloseAsync();
        Assert.NotEqual(CloseOutcome.TimedOut, stream.CloseOutcome);
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task Host_half_close_gives_the_guest_eof_and_the_guest_can_still_send()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        using var cts = new CancellationTokenSource(Scenario.Timeout);
        using var listener = guest.Listen(6200);
        using var host = await HostVsock.ConnectAsync(daemon[0].UdsPath!, 6200, Scenario.Timeout);
        var stream = await listener.AcceptAsync(cts.Token);

        await host.SendAllAsync("request"u8.ToArray(), cts.Token);
        host.Shutdown(SocketShutdown.Send);
        Assert.Equal("request"u8.ToArray(), await stream.ReadToEndAsync(cts.Token));
        Assert.Equal(VsockWire.ShutdownSend, stream.PeerShutdownFlags & VsockWire.ShutdownSend);

        var answer = TestPattern.RandomBytes(300_000, 9);
        var hostRead = host.ReadToEndAsync(cts.Token); // more than the socket buffers hold: read while writing
        await stream.WriteAsync(answer, cts.Token);
        stream.ShutdownWrite();
        Assert.Equal(Scenario.Hash(answer), Scenario.Hash(await hostRead));
        await stream.CloseAsync();
        Assert.NotEqual(CloseOutcome.TimedOut, stream.CloseOutcome);
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task Guest_reset_closes_the_host_socket()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        using var cts = new CancellationTokenSource(Scenario.Timeout);
        using var hostListener = HostVsock.Listen(daemon[0].UdsPath!, 6400);
        var stream = await guest.ConnectAsync(2, 6400, Scenario.Timeout, cts.Token);
        using var host = await hostListener.AcceptAsync(cts.Token);
        stream.Reset();
        Assert.True(await host.WaitForCloseAsync(Scenario.Timeout), "the host socket stays open after the guest's RST");
        await Scenario.VmServesAsync(guest, daemon[0].UdsPath!);
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task Host_closing_while_the_guest_writes_ends_the_guest_write()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        using var cts = new CancellationTokenSource(Scenario.Timeout);
        using var hostListener = HostVsock.Listen(daemon[0].UdsPath!, 6500);
        var stream = await guest.ConnectAsync(2, 6500, Scenario.Timeout, cts.Token);
        var host = await hostListener.AcceptAsync(cts.Token);

        var write = stream.WriteAsync(new byte[16 << 20], cts.Token).AsTask();
        await Task.Delay(100, cts.Token);
        host.Dispose(); // unread data and all: the daemon must tell the guest, not leave its writer waiting for credit
        await Assert.ThrowsAsync<GuestStreamClosedException>(() => write);
        Assert.True(stream.IsPeerReset || (stream.PeerShutdownFlags & VsockWire.ShutdownReceive) != 0);
        await Scenario.VmServesAsync(guest, daemon[0].UdsPath!);
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task Vmm_disconnect_drops_its_connections_and_a_new_vmm_on_the_same_socket_works()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        var first = SyntheticGuest.Connect(daemon[0].Socket);
        using var listener = first.Listen(6300);
        using var host = await HostVsock.ConnectAsync(daemon[0].UdsPath!, 6300, Scenario.Timeout);
        await listener.AcceptAsync().WaitAsync(Scenario.Timeout);

        first.Disconnect();
        Assert.True(await host.WaitForCloseAsync(Scenario.Timeout), "a host connection of the vanished VMM stays open");
        await first.DisposeAsync();

        await using var second = SyntheticGuest.Connect(daemon[0].Socket);
        Assert.Equal(3ul, second.GuestCid);
        await Scenario.VmServesAsync(second, daemon[0].UdsPath!);
        Scenario.AssertClean(second);
    }

    [Fact]
    public async Task A_guest_driver_reset_closes_the_host_side_of_its_streams_and_the_vmm_stays()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var listener = guest.Listen(5000);
        using var host = await HostVsock.ConnectAsync(daemon[0].UdsPath!, 5000, Scenario.Timeout);
        await listener.AcceptAsync(cts.Token);

        // What QEMU sends when the guest resets its device: disable both rings, then take them back.
        Span<byte> state = stackalloc byte[8];
        foreach (var ring in new uint[] { 0, 1 })
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(state, ring);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(state[4..], 0);
            guest.SendRequest(18 /* SET_VRING_ENABLE */, state, default, needReply: false);
        }
        foreach (var ring in new uint[] { 0, 1 })
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(state, ring);
            guest.SendRequest(11 /* GET_VRING_BASE */, state, default, needReply: false);
            Assert.NotNull(guest.ReceiveReply());
        }

        Assert.True(await host.WaitForCloseAsync(Scenario.Timeout), "the host socket stays open after the guest driver reset");
        Assert.False(guest.WaitForVhostUserHangup(TimeSpan.FromMilliseconds(200)), "the VMM was disconnected");
    }
}
