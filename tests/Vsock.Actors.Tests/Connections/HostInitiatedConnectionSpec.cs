using System.Net.Sockets;
using System.Text;
using Akka.Actor;
using Vsock.Actors.Connections;
using Vsock.Actors.Tests.TestSupport;
using Vsock.Device.Connections;
using Vsock.Device.Interop;
using Vsock.Device.Packets;
using static Vsock.Actors.Protocol.DeviceProtocol;

namespace Vsock.Actors.Tests.Connections;

/// <summary>
/// A host client on uds-path, as its connection actor sees it: the CONNECT line (read by peeking, so the bytes after
/// it stay in the socket), its timeout, the device's refusal, the guest's silence, and the stream released when the
/// actor stops. The actor's parent is a fake device on the VM's dispatcher; the far end of a unix pair is the client.
/// </summary>
public sealed class HostInitiatedConnectionSpec : ConnectionSpec
{
    private static readonly ConnectionKey Key = new(VsockConstants.HostCid, 1024, 1234);

    private async Task<(IActorRef Actor, HostStream Stream)> StartClientAsync(UnixPair pair, Func<ConnectionSettings, ConnectionSettings>? adjust = null)
    {
        var settings = await SettingsAsync();
        var stream = new HostStream(StreamHost, 65536, pair.Server.SafeHandle, sendsOkLine: true);
        var actor = await StartAsync(HostInitiatedConnection.Props(stream, adjust is null ? settings : adjust(settings)));
        return (actor, stream);
    }

    [Fact]
    public async Task A_partial_connect_line_waits_for_the_rest()
    {
        var pair = NewPair();
        var (actor, _) = await StartClientAsync(pair);

        pair.Client.Send("CONN"u8.ToArray());
        await DeviceProbe.ExpectNoMsgAsync(Quiet);
        pair.Client.Send("ECT 77\n"u8.ToArray());

        Assert.Equal(77u, (await DeviceProbe.ExpectMsgAsync<OpenToGuest>(Wait)).GuestPort);
        Assert.Equal(actor, DeviceProbe.LastSender);
    }

    [Fact]
    public async Task Bytes_after_the_newline_are_not_consumed_and_wait_in_the_socket_for_the_guest()
    {
        var pair = NewPair();
        var (_, stream) = await StartClientAsync(pair);

        pair.Client.Send("connect 1234\nearly data"u8.ToArray());
        Assert.Equal(1234u, (await DeviceProbe.ExpectMsgAsync<OpenToGuest>(Wait)).GuestPort);

        var left = await OnLoopAsync(() =>
        {
            var buffer = new byte[64];
            var n = StreamIo.Peek(stream.Socket!, buffer);
            return n > 0 ? Encoding.ASCII.GetString(buffer, 0, n) : $"peek: {n}";
        });
        Assert.Equal("early data", left);
    }

    [Theory]
    [InlineData("GET / HTTP/1.0\r\n")]
    [InlineData("CONNECT nope\n")]
    [InlineData("CONNECT 1 this line is much longer than thirty-two bytes\n")]
    public async Task Garbage_closes_that_client_only(string garbage)
    {
        var bad = NewPair();
        var good = NewPair();
        var (badActor, _) = await StartClientAsync(bad);
        var (goodActor, _) = await StartClientAsync(good);

        bad.Client.Send(Encoding.ASCII.GetBytes(garbage));
        await ExpectStoppedAsync(badActor);
        Assert.True(SeesEndOfStream(bad));

        good.Client.Send("CONNECT 5\n"u8.ToArray());
        Assert.Equal(5u, (await DeviceProbe.FishForMessageAsync<OpenToGuest>(_ => true, Wait)).GuestPort);
        Assert.Equal(goodActor, DeviceProbe.LastSender);
    }

    [Fact]
    public async Task A_client_silent_past_the_connect_line_timeout_is_closed()
    {
        var pair = NewPair();
        var (actor, _) = await StartClientAsync(pair, s => s with { ConnectLineTimeout = TimeSpan.FromMilliseconds(200) });

        await ExpectStoppedAsync(actor);
        Assert.True(SeesEndOfStream(pair));
        await StreamProbe.ExpectNoMsgAsync(Quiet);
    }

    [Fact]
    public async Task A_whole_line_cancels_the_connect_line_timeout()
    {
        var pair = NewPair();
        var (_, _) = await StartClientAsync(pair, s => s with { ConnectLineTimeout = TimeSpan.FromMilliseconds(200) });

        pair.Client.Send("CONNECT 9\n"u8.ToArray());
        await DeviceProbe.ExpectMsgAsync<OpenToGuest>(Wait);
        await ExpectNoMsgAsync(TimeSpan.FromMilliseconds(600)); // no Terminated: the timer was cancelled
    }

    [Fact]
    public async Task A_refused_open_closes_the_client()
    {
        var pair = NewPair();
        var (actor, _) = await StartClientAsync(pair);
        pair.Client.Send("CONNECT 1234\n"u8.ToArray());
        await DeviceProbe.ExpectMsgAsync<OpenToGuest>(Wait);

        actor.Tell(new OpenRefused("the guest driver is not running"));

        await ExpectStoppedAsync(actor);
        Assert.True(SeesEndOfStream(pair));
        await StreamProbe.ExpectNoMsgAsync(Quiet);
    }

    [Fact]
    public async Task A_client_that_hangs_up_before_connect_costs_nothing()
    {
        var pair = NewPair();
        var (actor, stream) = await StartClientAsync(pair);

        pair.Client.Shutdown(SocketShutdown.Both);

        await ExpectStoppedAsync(actor);
        await DeviceProbe.ExpectNoMsgAsync(Quiet);  // no OpenToGuest
        await StreamProbe.ExpectNoMsgAsync(Quiet);  // no stream work, no RST owed
        Assert.True(await OnLoopAsync(() => stream.Has(StreamStatus.Finished))); // released by PostStop
    }

    [Fact]
    public async Task A_guest_silent_after_the_request_gets_the_stream_reset()
    {
        var pair = NewPair();
        var (actor, stream) = await StartClientAsync(pair, s => s with { GuestResponseTimeout = TimeSpan.FromMilliseconds(300) });
        pair.Client.Send("CONNECT 1234\n"u8.ToArray());
        await DeviceProbe.ExpectMsgAsync<OpenToGuest>(Wait);
        // What the device does: the stream gets its key and owes the guest a REQUEST.
        await OnLoopAsync(() =>
        {
            stream.OpenToGuest(Key);
            return true;
        });
        actor.Tell(OpenedToGuest.Instance);
        await StreamProbe.ExpectMsgAsync<ProbeStreamHost.RxWanted>(Wait); // the REQUEST
        Assert.Equal(RxOps.Request, await OnLoopAsync(() => stream.PendingOps));

        // No RESPONSE within the timeout: the stream is reset (an RST owed; the device stops us once it went out).
        await AwaitConditionAsync(async () => await OnLoopAsync(() => stream.PendingOps) == RxOps.Rst, Wait);
        await ExpectNoMsgAsync(Quiet);
    }

    [Fact]
    public async Task Stopping_the_connection_disposes_the_stream_and_closes_the_socket()
    {
        var pair = NewPair();
        var (actor, stream) = await StartClientAsync(pair);
        pair.Client.Send("CONNECT 1234\n"u8.ToArray());
        await DeviceProbe.ExpectMsgAsync<OpenToGuest>(Wait);

        Sys.Stop(actor);

        await ExpectStoppedAsync(actor);
        Assert.True(SeesEndOfStream(pair));
        Assert.True(await OnLoopAsync(() => stream.Has(StreamStatus.Finished) && stream.Socket!.IsClosed));
    }
}
