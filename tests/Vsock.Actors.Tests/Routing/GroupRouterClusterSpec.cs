using Akka.Actor;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Vsock.Actors.Routing;
using Vsock.Device.Packets;
using static Vsock.Actors.Routing.ClusterRegistryProtocol;
using static Vsock.Actors.Routing.GroupRouterProtocol;

namespace Vsock.Actors.Tests.Routing;

/// <summary>
/// The router with a cluster view handed to it (as the registry would): a probe stands in for another node's
/// router. In the daemon a view never names this node's own address; here the probes are local, so a packet "from
/// the other node" is one whose sender has the address the view gives that node.
/// </summary>
public sealed class GroupRouterClusterSpec : TestKit
{
    private readonly IActorRef _router;
    private readonly TestProbe _otherNode;

    public GroupRouterClusterSpec()
    {
        _router = Sys.ActorOf(GroupRouterActor.Props());
        _otherNode = CreateTestProbe("node-b-router");
    }

    private TestProbe Device(ulong cid, params string[] groups)
    {
        var probe = CreateTestProbe($"cid{cid}");
        _router.Tell(new Register(cid, groups), probe);
        probe.ExpectMsg<Registered>();
        return probe;
    }

    private ClusterView View(Dictionary<ulong, string> remote, Dictionary<ulong, string>? refused = null) => new(
        remote.ToDictionary(r => r.Key, r => new RemoteVm(_otherNode.Ref.Path.Address, r.Value.Split('+'), _otherNode.Ref)),
        refused ?? []);

    private static VsockHeader Header(ulong from, ulong to, ushort op = VsockOp.Request) => new()
    {
        SrcCid = from, DstCid = to, SrcPort = 40000, DstPort = 1234, Type = VsockType.Stream, Op = op,
    };

    [Fact]
    public void A_request_to_a_cid_on_another_node_goes_to_that_nodes_router_with_the_sender_kept()
    {
        var a = Device(3, "g1");
        _router.Tell(View(new() { [4] = "g1" }));
        _router.Tell(new SiblingPacket(Header(3, 4), null), a);
        _otherNode.ExpectMsg<SiblingPacket>();
        Assert.Equal(a.Ref, _otherNode.LastSender);
    }

    [Fact]
    public void A_remote_cid_without_a_common_group_is_refused_at_once()
    {
        var a = Device(3, "g1");
        _router.Tell(View(new() { [4] = "g2" }));
        _router.Tell(new SiblingPacket(Header(3, 4), null), a);
        Assert.Contains("share no group", a.ExpectMsg<SiblingUnreachable>().Reason);
        _otherNode.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public void A_request_from_another_nodes_device_reaches_ours_after_the_group_check()
    {
        var b = Device(4, "g1");
        Device(5, "g9");
        _router.Tell(View(new() { [3] = "g1" }));
        var remoteDevice = CreateTestProbe("node-b-cid3");
        _router.Tell(new SiblingPacket(Header(3, 4), null), remoteDevice);
        b.ExpectMsg<SiblingPacket>();
        Assert.Equal(remoteDevice.Ref, b.LastSender);

        _router.Tell(new SiblingPacket(Header(3, 5), null), remoteDevice);
        Assert.Contains("share no group", remoteDevice.ExpectMsg<SiblingUnreachable>().Reason);
    }

    [Fact]
    public void When_a_remote_cid_leaves_the_view_our_devices_reset_their_streams_with_it()
    {
        var a = Device(3, "g1");
        var b = Device(4, "g1");
        _router.Tell(View(new() { [7] = "g1", [8] = "g1" }));
        _router.Tell(View(new() { [8] = "g1" }));
        Assert.Equal(7ul, a.ExpectMsg<SiblingGuestReset>().Cid);
        Assert.Equal(7ul, b.ExpectMsg<SiblingGuestReset>().Cid);
        a.ExpectNoMsg(TimeSpan.FromMilliseconds(100));

        // ... and a new connection to it is refused at once.
        _router.Tell(new SiblingPacket(Header(3, 7), null), a);
        Assert.Contains("no VM with CID 7", a.ExpectMsg<SiblingUnreachable>().Reason);
    }

    [Fact]
    public void A_guest_reset_of_ours_reaches_the_other_nodes_and_theirs_reaches_our_devices()
    {
        var a = Device(3, "g1");
        var b = Device(4, "g1");
        _router.Tell(View(new() { [7] = "g1" }));
        _router.Tell(new SiblingGuestReset(3), a);
        Assert.Equal(3ul, b.ExpectMsg<SiblingGuestReset>().Cid);
        Assert.Equal(3ul, _otherNode.ExpectMsg<SiblingGuestReset>().Cid);

        _router.Tell(new SiblingGuestReset(7), _otherNode.Ref);
        Assert.Equal(7ul, a.ExpectMsg<SiblingGuestReset>().Cid);
        Assert.Equal(7ul, b.ExpectMsg<SiblingGuestReset>().Cid);
    }

    [Fact]
    public void A_refused_vm_loses_its_sibling_streams_reaches_nobody_and_its_cid_goes_to_the_older_node()
    {
        var a = Device(3, "g1");
        var b = Device(4, "g1");
        _router.Tell(View(new() { [3] = "g1", [9] = "g1" }, refused: new() { [3] = "CID 3 is already served by the VM on another node" }));

        // Device 3 ends its streams with every CID it may have one with; device 4 ends its streams with (our) CID 3.
        var resets = new[] { a.ExpectMsg<SiblingGuestReset>().Cid, a.ExpectMsg<SiblingGuestReset>().Cid }.Order().ToArray();
        Assert.Equal([4ul, 9ul], resets);
        Assert.Equal(3ul, b.ExpectMsg<SiblingGuestReset>().Cid);

        _router.Tell(new SiblingPacket(Header(3, 4), null), a);
        Assert.Contains("guest CID 3 is refused in the cluster", a.ExpectMsg<SiblingUnreachable>().Reason);

        // Device 4 asking for CID 3 reaches the other node's VM, not ours.
        _router.Tell(new SiblingPacket(Header(4, 3), null), b);
        _otherNode.ExpectMsg<SiblingPacket>();
        a.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }
}
