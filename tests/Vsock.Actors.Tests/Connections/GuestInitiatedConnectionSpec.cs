using System.Net.Sockets;
using Akka.Actor;
using Vsock.Actors.Connections;
using Vsock.Actors.Tests.TestSupport;
using Vsock.Device.Connections;
using Vsock.Device.Packets;

namespace Vsock.Actors.Tests.Connections;

/// <summary>
/// A guest REQUEST to a host unix socket, as its connection actor handles it: the connect off the loop, the socket
/// handed to the stream (which then owes RESPONSE and watches the socket), and a failed connect costing the guest an
/// RST at once.
/// </summary>
public sealed class GuestInitiatedConnectionSpec : ConnectionSpec
{
    private async Task<(IActorRef Actor, HostStream Stream)> StartRequestAsync(ConnectionKey key, string path)
    {
        var settings = await SettingsAsync();
        var stream = new HostStream(StreamHost, 65536, socket: null, sendsOkLine: false);
        var request = Packets.FromGuest(VsockOp.Request, key.PeerPort, key.GuestPort);
        await OnLoopAsync(() =>
        {
            stream.AcceptFromGuest(key, request);
            return true;
        });
        return (await StartAsync(GuestInitiatedConnection.Props(stream, settings, new UnixEndpoint(path))), stream);
    }

    [Fact]
    public async Task A_connect_to_a_listening_path_hands_the_socket_to_the_stream_which_owes_the_response()
    {
        var dir = Directory.CreateTempSubdirectory("vsock-gic-").FullName;
        try
        {
            var path = Path.Combine(dir, "vm.sock_5000");
            using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen(1);
            var key = new ConnectionKey(VsockConstants.HostCid, 5000, 40000);

            var (_, stream) = await StartRequestAsync(key, path);
            using var accepted = await listener.AcceptAsync().WaitAsync(Wait);

            Assert.Same(stream, (await StreamProbe.ExpectMsgAsync<ProbeStreamHost.RxWanted>(Wait)).Stream);
            Assert.Equal(RxOps.Response, await OnLoopAsync(() => stream.PendingOps));

            // The socket is watched from now on: the host application hanging up reaches the stream.
            accepted.Shutdown(SocketShutdown.Send);
            await AwaitConditionAsync(() => OnLoopAsync(() => stream.Has(StreamStatus.HostClosing)), Wait);
            await ExpectNoMsgAsync(Quiet); // the connection lives on (no Terminated)
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task A_failed_connect_resets_the_guest_s_request_at_once()
    {
        var key = new ConnectionKey(VsockConstants.HostCid, 5001, 40001);

        var (_, stream) = await StartRequestAsync(key, "/nonexistent/vsock-test.sock_5001");

        Assert.Same(stream, (await StreamProbe.ExpectMsgAsync<ProbeStreamHost.RxWanted>(Wait)).Stream);
        Assert.Equal(RxOps.Rst, await OnLoopAsync(() => stream.PendingOps));
        Assert.True(await OnLoopAsync(() => stream.Socket is null));
        // The device stops the connection once the RST went out; until then it waits.
        await ExpectNoMsgAsync(Quiet);
    }
}
