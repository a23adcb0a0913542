using Vsock.Device.Threading;
using System.Buffers;
using System.Net.Sockets;
using System.Text;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Vsock.Actors.Connections;
using Vsock.Actors.Tests.TestSupport;
using Vsock.Device.Connections;
using Vsock.Device.Packets;
using static Vsock.Actors.Protocol.DeviceProtocol;

namespace Vsock.Actors.Tests.Connections;

/// <summary>
/// The connection state machine against a TestProbe in the device's place and a real unix socket
/// pair in the host application's place.
/// </summary>
public sealed class ConnectionActorSpec : TestKit, IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);
    private readonly UnixPair _pair = new();
    // The connections run on the test's dispatcher; a loop of their own reports their sockets' readiness
    // from its thread, as it does for a device that is not on an event-loop dispatcher.
    private readonly EventLoop _loop = new("connection-spec-events");
    private readonly ConnectionOptions _options;

    public ConnectionActorSpec() => _options = new ConnectionOptions(Packets.GuestCid, 65536, null) { Loop = _loop };

    public new void Dispose()
    {
        _pair.Dispose();
        base.Dispose();
        _loop.Dispose();
    }

    private (IActorRef actor, Akka.TestKit.TestProbe device) StartHostClient(ConnectionOptions? options = null)
    {
        var device = CreateTestProbe("device");
        var actor = Sys.ActorOf(ConnectionActor.ForHostClient(device, options ?? _options, _pair.Server));
        return (actor, device);
    }

    private static readonly ConnectionKey Key = new(VsockConstants.HostCid, 1024, 1234);

    /// <summary>Runs the host-initiated handshake up to the point where the client has read "OK 1234\n".</summary>
    private (IActorRef actor, Akka.TestKit.TestProbe device) Establish(string connectLine = "CONNECT 1234\n", uint guestBufAlloc = 262144)
    {
        var (actor, device) = StartHostClient();
        _pair.Client.Send(Encoding.ASCII.GetBytes(connectLine));
        Assert.Equal(1234u, device.ExpectMsg<OpenToGuest>(Wait).GuestPort);
        device.Reply(new OpenedToGuest(Key));
        var request = device.ExpectMsg<ToGuest>(Wait);
        Assert.Equal(VsockOp.Request, request.Header.Op);
        Assert.Equal(Packets.GuestCid, request.Header.DstCid);
        Assert.Equal(2ul, request.Header.SrcCid);
        Assert.Equal(1024u, request.Header.SrcPort);
        Assert.Equal(1234u, request.Header.DstPort);
        Assert.Equal(65536u, request.Header.BufAlloc);
        actor.Tell(new FromGuest(Packets.FromGuest(VsockOp.Response, 1024, 1234, bufAlloc: guestBufAlloc), null), device);
        Assert.Equal("OK 1234\n", ReadExactly(_pair.Client, 8));
        return (actor, device);
    }

    private static string ReadExactly(Socket s, int n)
    {
        var buffer = new byte[n];
        var got = 0;
        while (got < n)
        {
            var r = s.Receive(buffer, got, n - got, SocketFlags.None);
            if (r == 0)
                break;
            got += r;
        }
        return Encoding.ASCII.GetString(buffer, 0, got);
    }

    private static byte[] Pooled(string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        var a = ArrayPool<byte>.Shared.Rent(bytes.Length);
        bytes.CopyTo(a, 0);
        return a;
    }

    private static FromGuest GuestData(string text, uint fwdCnt = 0) =>
        new(Packets.FromGuest(VsockOp.Rw, 1024, 1234, (uint)text.Length, fwdCnt: fwdCnt), Pooled(text));

    [Fact]
    public void Host_connect_handshake_relays_both_ways_and_keeps_bytes_sent_after_the_newline()
    {
        var (actor, device) = StartHostClient();
        _pair.Client.Send(Encoding.ASCII.GetBytes("connect 1234\nearly"));
        device.ExpectMsg<OpenToGuest>(Wait);
        device.Reply(new OpenedToGuest(Key));
        device.ExpectMsg<ToGuest>(m => m.Header.Op == VsockOp.Request, Wait);
        actor.Tell(new FromGuest(Packets.FromGuest(VsockOp.Response, 1024, 1234), null), device);
        Assert.Equal("OK 1234\n", ReadExactly(_pair.Client, 8));

        var early = device.ExpectMsg<ToGuest>(m => m.Header.Op == VsockOp.Rw, Wait);
        Assert.Equal("early", Encoding.ASCII.GetString(early.Data!, 0, early.Length));
        Assert.Equal(5u, early.Header.Len);

        _pair.Client.Send("from host"u8.ToArray());
        var rw = device.ExpectMsg<ToGuest>(m => m.Header.Op == VsockOp.Rw, Wait);
        Assert.Equal("from host", Encoding.ASCII.GetString(rw.Data!, 0, rw.Length));

        actor.Tell(GuestData("from guest"), device);
        Assert.Equal("from guest", ReadExactly(_pair.Client, 10));
    }

    [Fact]
    public void A_partial_connect_line_waits_for_the_rest()
    {
        var (_, device) = StartHostClient();
        _pair.Client.Send("CONN"u8.ToArray());
        device.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        _pair.Client.Send("ECT 77\n"u8.ToArray());
        Assert.Equal(77u, device.ExpectMsg<OpenToGuest>(Wait).GuestPort);
    }

    [Theory]
    [InlineData("GET / HTTP/1.0\r\n")]
    [InlineData("CONNECT nope\n")]
    [InlineData("CONNECT 1 this line is much longer than thirty-two bytes\n")]
    public void Garbage_closes_that_client_only(string garbage)
    {
        var (actor, device) = StartHostClient();
        Watch(actor);
        _pair.Client.Send(Encoding.ASCII.GetBytes(garbage));
        ExpectTerminated(actor, Wait);
        device.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        Assert.Equal(0, _pair.Client.Receive(new byte[1])); // EOF
    }

    [Fact]
    public void A_client_that_hangs_up_before_connect_costs_nothing()
    {
        var (actor, device) = StartHostClient();
        Watch(actor);
        _pair.Client.Shutdown(SocketShutdown.Both);
        ExpectTerminated(actor, Wait);
        device.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public void A_client_silent_past_the_timeout_is_closed()
    {
        var (actor, _) = StartHostClient(_options with { ConnectLineTimeout = TimeSpan.FromMilliseconds(200) });
        Watch(actor);
        ExpectTerminated(actor, Wait);
    }

    [Fact]
    public void Guest_rst_to_request_closes_the_client_without_an_ok()
    {
        var (actor, device) = StartHostClient();
        Watch(actor);
        _pair.Client.Send("CONNECT 1234\n"u8.ToArray());
        device.ExpectMsg<OpenToGuest>(Wait);
        device.Reply(new OpenedToGuest(Key));
        device.ExpectMsg<ToGuest>(m => m.Header.Op == VsockOp.Request, Wait);
        actor.Tell(new FromGuest(Packets.FromGuest(VsockOp.Rst, 1024, 1234), null), device);
        ExpectTerminated(actor, Wait);
        Assert.Equal(0, _pair.Client.Receive(new byte[16]));
        device.ExpectNoMsg(TimeSpan.FromMilliseconds(100)); // no RST answers an RST
    }

    [Fact]
    public void Device_refusal_closes_the_client()
    {
        var (actor, device) = StartHostClient();
        Watch(actor);
        _pair.Client.Send("CONNECT 1\n"u8.ToArray());
        device.ExpectMsg<OpenToGuest>(Wait);
        device.Reply(new OpenRefused("the guest driver is not running"));
        ExpectTerminated(actor, Wait);
    }

    [Fact]
    public void Host_reads_never_exceed_the_guest_credit_and_resume_on_credit_update()
    {
        var (actor, device) = Establish(guestBufAlloc: 1000);
        _pair.Client.Send(new byte[3000]);
        var total = 0u;
        while (total < 1000)
        {
            var rw = device.ExpectMsg<ToGuest>(m => m.Header.Op == VsockOp.Rw, Wait);
            total += rw.Header.Len;
            actor.Tell(RxDelivered.Instance, device);
        }
        Assert.Equal(1000u, total);
        // Credit exhausted: the connection asks for credit instead of reading more.
        device.ExpectMsg<ToGuest>(m => m.Header.Op == VsockOp.CreditRequest, Wait);
        device.ExpectNoMsg(TimeSpan.FromMilliseconds(200));

        actor.Tell(new FromGuest(Packets.FromGuest(VsockOp.CreditUpdate, 1024, 1234, bufAlloc: 1000, fwdCnt: 1000), null), device);
        var next = device.ExpectMsg<ToGuest>(m => m.Header.Op == VsockOp.Rw, Wait);
        Assert.InRange(next.Header.Len, 1u, 1000u);
    }

    [Fact]
    public void Credit_request_is_answered_with_credit_update()
    {
        var (actor, device) = Establish();
        actor.Tell(new FromGuest(Packets.FromGuest(VsockOp.CreditRequest, 1024, 1234), null), device);
        var update = device.ExpectMsg<ToGuest>(m => m.Header.Op == VsockOp.CreditUpdate, Wait);
        Assert.Equal(65536u, update.Header.BufAlloc);
        Assert.Equal(0u, update.Header.FwdCnt);
    }

    [Fact]
    public void Guest_data_advances_fwd_cnt_and_a_credit_update_follows_three_quarters_of_the_buffer()
    {
        var (actor, device) = Establish();
        var chunk = new string('x', 20000);
        actor.Tell(GuestData(chunk), device);
        actor.Tell(GuestData(chunk), device);
        actor.Tell(GuestData(chunk), device);
        Assert.Equal(60000, ReadExactly(_pair.Client, 60000).Length);
        // 40000 forwarded still leaves the guest 25536 of 65536 (over a quarter): the update comes with
        // the third write, in one batch with it or after it.
        var update = device.ExpectMsg<ToGuest>(m => m.Header.Op == VsockOp.CreditUpdate, Wait);
        Assert.InRange(update.Header.FwdCnt, 60000u, 60000u);
    }

    [Fact]
    public void Guest_exceeding_its_credit_is_reset()
    {
        // The host application reads nothing and its socket buffers are small, so only a few KiB of
        // the first packet can be forwarded: whatever credit update goes out, the guest was never
        // told of room for the second packet (writes the kernel takes at once are forwarded in the
        // same turn, so with roomy buffers the update would legitimately cover it).
        _pair.Server.SendBufferSize = 4096;
        _pair.Client.ReceiveBufferSize = 4096;
        var (actor, device) = Establish();
        Watch(actor);
        var big = new string('y', 40000);
        actor.Tell(GuestData(big), device);
        actor.Tell(GuestData(big), device); // 80000 - (a few KiB forwarded) > 65536
        // A CREDIT_UPDATE for the few KiB forwarded may come first; it never covers the second packet.
        device.FishForMessage<ToGuest>(m => m.Header.Op == VsockOp.Rst, Wait);
        ExpectTerminated(actor, Wait);
    }

    [Fact]
    public void Guest_shutdown_send_half_closes_the_host_socket_and_the_other_direction_still_works()
    {
        var (actor, device) = Establish();
        actor.Tell(GuestData("last words"), device);
        actor.Tell(new FromGuest(Packets.FromGuest(VsockOp.Shutdown, 1024, 1234, flags: VsockShutdownFlags.Send), null), device);
        Assert.Equal("last words", ReadExactly(_pair.Client, 10));
        Assert.Equal(0, _pair.Client.Receive(new byte[1])); // EOF: the write side is shut

        _pair.Client.Send("reply"u8.ToArray());
        var rw = device.ExpectMsg<ToGuest>(m => m.Header.Op == VsockOp.Rw, Wait);
        Assert.Equal("reply", Encoding.ASCII.GetString(rw.Data!, 0, rw.Length));
    }

    [Fact]
    public void Host_eof_sends_shutdown_send_and_guest_can_still_write()
    {
        var (actor, device) = Establish();
        _pair.Client.Shutdown(SocketShutdown.Send);
        var shutdown = device.ExpectMsg<ToGuest>(m => m.Header.Op == VsockOp.Shutdown, Wait);
        Assert.Equal(VsockShutdownFlags.Send, shutdown.Header.Flags);
        actor.Tell(GuestData("still here"), device);
        Assert.Equal("still here", ReadExactly(_pair.Client, 10));
    }

    [Fact]
    public void Guest_full_shutdown_flushes_then_resets_and_closes()
    {
        var (actor, device) = Establish();
        Watch(actor);
        actor.Tell(GuestData("bye"), device);
        actor.Tell(new FromGuest(Packets.FromGuest(VsockOp.Shutdown, 1024, 1234, flags: VsockShutdownFlags.Both), null), device);
        Assert.Equal("bye", ReadExactly(_pair.Client, 3));
        device.ExpectMsg<ToGuest>(m => m.Header.Op == VsockOp.Rst, Wait);
        ExpectTerminated(actor, Wait);
        Assert.Equal(0, _pair.Client.Receive(new byte[1]));
    }

    [Fact]
    public void Guest_rst_closes_the_host_socket_without_reply()
    {
        var (actor, device) = Establish();
        Watch(actor);
        actor.Tell(new FromGuest(Packets.FromGuest(VsockOp.Rst, 1024, 1234), null), device);
        ExpectTerminated(actor, Wait);
        device.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public void Host_socket_closing_mid_stream_is_reported_to_the_guest()
    {
        var (actor, device) = Establish();
        Watch(actor);
        _pair.Client.Close();
        device.ExpectMsg<ToGuest>(m => m.Header.Op == VsockOp.Shutdown, Wait);
        // The guest keeps writing into a closed socket: the write fails and the stream is reset.
        actor.Tell(GuestData("anyone?"), device);
        device.ExpectMsg<ToGuest>(m => m.Header.Op == VsockOp.Rst, Wait);
        ExpectTerminated(actor, Wait);
    }

    [Fact]
    public void Guest_request_to_a_listening_host_path_gets_response_and_relays()
    {
        var dir = Directory.CreateTempSubdirectory("vsock-conn-").FullName;
        try
        {
            var path = Path.Combine(dir, "vm.sock_5000");
            using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen(1);
            var device = CreateTestProbe();
            var key = new ConnectionKey(VsockConstants.HostCid, 5000, 40000);
            var request = Packets.FromGuest(VsockOp.Request, 5000, 40000);
            var actor = Sys.ActorOf(ConnectionActor.ForGuestRequest(device, _options, key, request, new UnixEndpoint(path)));
            using var accepted = listener.Accept();
            var response = device.ExpectMsg<ToGuest>(Wait);
            Assert.Equal(VsockOp.Response, response.Header.Op);
            Assert.Equal(5000u, response.Header.SrcPort);
            Assert.Equal(40000u, response.Header.DstPort);

            actor.Tell(new FromGuest(Packets.FromGuest(VsockOp.Rw, 5000, 40000, 4), Pooled("ping")), device);
            accepted.ReceiveTimeout = 5000;
            Assert.Equal("ping", ReadExactly(accepted, 4));
            accepted.Send("pong"u8.ToArray());
            var rw = device.ExpectMsg<ToGuest>(m => m.Header.Op == VsockOp.Rw, Wait);
            Assert.Equal("pong", Encoding.ASCII.GetString(rw.Data!, 0, rw.Length));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Guest_request_to_a_missing_host_path_is_reset_at_once()
    {
        var device = CreateTestProbe();
        var key = new ConnectionKey(VsockConstants.HostCid, 5001, 40001);
        var actor = Sys.ActorOf(ConnectionActor.ForGuestRequest(device, _options, key,
            Packets.FromGuest(VsockOp.Request, 5001, 40001), new UnixEndpoint("/nonexistent/vsock-test.sock_5001")));
        Watch(actor);
        var rst = device.ExpectMsg<ToGuest>(TimeSpan.FromSeconds(1));
        Assert.Equal(VsockOp.Rst, rst.Header.Op);
        Assert.Equal(40001u, rst.Header.DstPort);
        ExpectTerminated(actor, Wait);
    }

    [Fact]
    public void A_forwarded_client_goes_straight_to_request_without_connect_or_ok_lines()
    {
        // The AF_VSOCK forward-listen path, with a unix socket pair standing in for the accepted AF_VSOCK socket.
        var device = CreateTestProbe();
        var options = new ConnectionOptions(Packets.GuestCid, 65536, UdsPath: null, ForwardCid: 1) { Loop = _loop };
        var actor = Sys.ActorOf(ConnectionActor.ForForwardedClient(device, options, _pair.Server, 9001));
        Assert.Equal(9001u, device.ExpectMsg<OpenToGuest>(Wait).GuestPort);
        device.Reply(new OpenedToGuest(new ConnectionKey(VsockConstants.HostCid, 1024, 9001)));
        device.ExpectMsg<ToGuest>(m => m.Header.Op == VsockOp.Request && m.Header.DstPort == 9001, Wait);
        actor.Tell(new FromGuest(Packets.FromGuest(VsockOp.Response, 1024, 9001), null), device);
        actor.Tell(new FromGuest(Packets.FromGuest(VsockOp.Rw, 1024, 9001, 5), Pooled("hello")), device);
        Assert.Equal("hello", ReadExactly(_pair.Client, 5)); // no "OK 9001\n" before the data
        _pair.Client.Send("back"u8.ToArray());
        var rw = device.ExpectMsg<ToGuest>(m => m.Header.Op == VsockOp.Rw, Wait);
        Assert.Equal("back", Encoding.ASCII.GetString(rw.Data!, 0, rw.Length));
    }
}
