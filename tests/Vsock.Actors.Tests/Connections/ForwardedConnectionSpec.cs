using Akka.Actor;
using Vsock.Actors.Connections;
using Vsock.Device.Connections;
using static Vsock.Actors.Protocol.DeviceProtocol;

namespace Vsock.Actors.Tests.Connections;

/// <summary>A forward-listen client (a unix pair stands in for the accepted AF_VSOCK socket): no CONNECT line.</summary>
public sealed class ForwardedConnectionSpec : ConnectionSpec
{
    [Fact]
    public async Task A_forwarded_client_asks_for_its_guest_port_at_once_and_a_refusal_closes_it()
    {
        var pair = NewPair();
        var settings = await SettingsAsync();
        var stream = new HostStream(StreamHost, 65536, pair.Server.SafeHandle, sendsOkLine: false);

        var actor = await StartAsync(ForwardedConnection.Props(stream, settings with { ForwardCid = 1 }, 9001));

        Assert.Equal(9001u, (await DeviceProbe.ExpectMsgAsync<OpenToGuest>(Wait)).GuestPort);
        actor.Tell(new OpenRefused("no free host-side port"));
        await ExpectStoppedAsync(actor);
        Assert.True(SeesEndOfStream(pair));
    }
}
