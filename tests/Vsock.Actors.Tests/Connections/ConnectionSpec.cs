using Akka.Actor;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Vsock.Actors.Connections;
using Vsock.Actors.Device;
using Vsock.Actors.Tests.TestSupport;
using Vsock.Device.Threading;

namespace Vsock.Actors.Tests.Connections;

/// <summary>
/// What the connection specs share: a <see cref="FakeDevice"/> on a VM's dispatcher as the connections' parent, a
/// probe in the device's place (<see cref="DeviceProbe"/>) and one for what streams ask of the device
/// (<see cref="StreamProbe"/>), and unix socket pairs whose far end plays the host application.
/// </summary>
public abstract class ConnectionSpec : TestKit, IDisposable
{
    // Generous: the specs run real sockets and an event-loop thread per test on small, shared machines.
    protected static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    protected static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);
    private readonly List<UnixPair> _pairs = [];
    private ConnectionSettings? _settings;

    protected ConnectionSpec() : base(VsockTestKitConfig.Config)
    {
        DeviceProbe = CreateTestProbe("device-probe");
        StreamProbe = CreateTestProbe("stream-probe");
        Device = Sys.ActorOf(FakeDevice.Props(DeviceProbe, VsockDispatchers.ForVm(Sys, Packets.GuestCid)), "device");
        StreamHost = new ProbeStreamHost(StreamProbe);
    }

    protected TestProbe DeviceProbe { get; }

    protected TestProbe StreamProbe { get; }

    protected IActorRef Device { get; }

    protected ProbeStreamHost StreamHost { get; }

    public new void Dispose()
    {
        base.Dispose(); // stops the actors first: their sockets leave the loop before the pairs close them
        foreach (var pair in _pairs)
            pair.Dispose();
    }

    protected UnixPair NewPair()
    {
        var pair = new UnixPair();
        _pairs.Add(pair);
        return pair;
    }

    /// <summary>The VM's settings, with the VM's event loop (asked of an actor on its dispatcher).</summary>
    protected async Task<ConnectionSettings> SettingsAsync() =>
        _settings ??= new ConnectionSettings(Packets.GuestCid, 65536, UdsPath: null, ForwardCid: null,
            await OnLoopAsync(() => EventLoop.Current ?? throw new InvalidOperationException("the fake device is not on a loop")));

    /// <summary>Runs <paramref name="work"/> on the VM's loop thread (where streams may be touched) and returns its result.</summary>
    protected async Task<T> OnLoopAsync<T>(Func<T> work) =>
        (T)await Device.Ask<object>(new FakeDevice.OnLoop(() => work()!), Wait);

    protected async Task<IActorRef> StartAsync(Props props)
    {
        var child = await Device.Ask<IActorRef>(new FakeDevice.StartChild(props), Wait);
        Watch(child);
        return child;
    }

    protected async Task ExpectStoppedAsync(IActorRef connection)
    {
        await ExpectTerminatedAsync(connection, Wait);
        Assert.Equal(connection, (await DeviceProbe.FishForMessageAsync<FakeDevice.ChildStopped>(m => m.Child.Equals(connection), Wait)).Child);
    }

    /// <summary>True once the host application's end reads end of stream (the connection closed the socket).</summary>
    protected static bool SeesEndOfStream(UnixPair pair)
    {
        try
        {
            var buffer = new byte[64];
            while (true)
            {
                var n = pair.Client.Receive(buffer);
                if (n == 0)
                    return true;
            }
        }
        catch (System.Net.Sockets.SocketException e) when (e.SocketErrorCode == System.Net.Sockets.SocketError.ConnectionReset)
        {
            return true;
        }
    }
}
