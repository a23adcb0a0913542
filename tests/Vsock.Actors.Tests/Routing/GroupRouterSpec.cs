using Akka.Actor;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Vsock.Actors.Routing;
using Vsock.Device.Connections;
using Vsock.Device.Packets;
using static Vsock.Actors.Routing.GroupRouterProtocol;

namespace Vsock.Actors.Tests.Routing;

/// <summary>The CID registry and sibling post office, with probes standing in for the devices.</summary>
public sealed class GroupRouterSpec : TestKit
{
    private readonly IActorRef _router;

    public GroupRouterSpec() => _router = Sys.ActorOf(GroupRouterActor.Props());

    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(100);

    private async Task<TestProbe> DeviceAsync(ulong cid, params string[] groups)
    {
        var probe = CreateTestProbe($"cid{cid}");
        _router.Tell(new Register(cid, groups), probe);
        await probe.ExpectMsgAsync<Registered>(Wait);
        return probe;
    }

    private static VsockHeader Header(ulong from, ulong to, ushort op = VsockOp.Request, uint len = 0) => new()
    {
        SrcCid = from, DstCid = to, SrcPort = 40000, DstPort = 1234, Type = VsockType.Stream, Op = op, Len = len,
    };

    [Fact]
    public async Task A_packet_reaches_a_sibling_that_shares_a_group_with_the_sender_as_sender()
    {
        var a = await DeviceAsync(3, "g1", "g2");
        var b = await DeviceAsync(4, "g2");
        var data = PayloadPool.Rent(4);
        _router.Tell(new SiblingPacket(Header(3, 4, VsockOp.Rw, 4), data), a);
        var delivered = await b.ExpectMsgAsync<SiblingPacket>(Wait);
        Assert.Same(data, delivered.Data);
        Assert.Equal(a.Ref, b.LastSender);
    }

    [Fact]
    public async Task Disjoint_groups_are_unreachable_at_once()
    {
        var a = await DeviceAsync(3, "g1");
        var b = await DeviceAsync(4, "g2");
        _router.Tell(new SiblingPacket(Header(3, 4), null), a);
        Assert.Contains("share no group", (await a.ExpectMsgAsync<SiblingUnreachable>(Wait)).Reason);
        await b.ExpectNoMsgAsync(Quiet);
    }

    [Fact]
    public async Task An_unknown_cid_is_unreachable_but_an_rst_is_never_answered()
    {
        var a = await DeviceAsync(3, "default");
        _router.Tell(new SiblingPacket(Header(3, 9), null), a);
        Assert.Contains("no VM with CID 9", (await a.ExpectMsgAsync<SiblingUnreachable>(Wait)).Reason);
        _router.Tell(new SiblingPacket(Header(3, 9, VsockOp.Rst), null), a);
        await a.ExpectNoMsgAsync(Quiet);
    }

    [Fact]
    public async Task A_device_cannot_speak_for_another_cid()
    {
        var a = await DeviceAsync(3, "default");
        var b = await DeviceAsync(4, "default");
        await DeviceAsync(5, "default");
        _router.Tell(new SiblingPacket(Header(5, 4), null), a); // a is CID 3, claims 5
        Assert.Contains("not the device of CID 5", (await a.ExpectMsgAsync<SiblingUnreachable>(Wait)).Reason);
        await b.ExpectNoMsgAsync(Quiet);
    }

    [Fact]
    public async Task A_duplicate_cid_is_rejected()
    {
        await DeviceAsync(3, "default");
        var clash = CreateTestProbe();
        _router.Tell(new Register(3, ["default"]), clash);
        Assert.Contains("already in use", (await clash.ExpectMsgAsync<RegistrationRejected>(Wait)).Reason);
    }

    [Fact]
    public async Task When_a_device_dies_its_siblings_are_told_and_its_cid_is_free_again()
    {
        var a = await DeviceAsync(3, "default");
        var b = await DeviceAsync(4, "default");
        Watch(b.Ref);
        Sys.Stop(b.Ref);
        await ExpectTerminatedAsync(b.Ref, Wait);
        Assert.Equal(4ul, (await a.ExpectMsgAsync<SiblingGuestReset>(Wait)).Cid);
        await DeviceAsync(4, "default"); // a fresh device may take the CID
    }

    [Fact]
    public async Task A_guest_reset_is_passed_to_every_other_device()
    {
        var a = await DeviceAsync(3, "default");
        var b = await DeviceAsync(4, "default");
        var c = await DeviceAsync(5, "other");
        _router.Tell(new SiblingGuestReset(3), a);
        Assert.Equal(3ul, (await b.ExpectMsgAsync<SiblingGuestReset>(Wait)).Cid);
        Assert.Equal(3ul, (await c.ExpectMsgAsync<SiblingGuestReset>(Wait)).Cid);
        await a.ExpectNoMsgAsync(Quiet);
    }
}
