using Akka.Actor;
using Akka.Cluster;
using Vsock.Actors.Routing;
using static Vsock.Actors.Routing.ClusterRegistryProtocol;

namespace Vsock.Actors.Tests.Routing;

/// <summary>Which CID is served where: live nodes only, the oldest node wins a duplicate, our own refused VMs listed.</summary>
public sealed class ClusterViewBuilderTests
{
    private static readonly UniqueAddress Self = Node(25520);
    private static readonly UniqueAddress B = Node(25521);
    private static readonly UniqueAddress C = Node(25522);

    private static UniqueAddress Node(int port, int uid = 1) =>
        new(new Address("akka.tcp", "vhost-device-vsock", "127.0.0.1", port), uid);

    private static (UniqueAddress, NodeVms) Claim(UniqueAddress node, params (ulong Cid, string Groups)[] vms) =>
        (node, new NodeVms(node.Address.ToString(), node.Uid, vms.Select(v => new NodeVm(v.Cid, v.Groups.Split('+'))).ToList()));

    private static ClusterView Build(
        int selfRank, Dictionary<UniqueAddress, int> live, (UniqueAddress, NodeVms)[] claims, (ulong Cid, string Groups)[] local, out IReadOnlyList<string> conflicts) =>
        ClusterViewBuilder.Build(Self, selfRank, live, claims, local.ToDictionary(l => l.Cid, l => (IReadOnlyList<string>)l.Groups.Split('+')),
            _ => ActorRefs.Nobody, out conflicts);

    [Fact]
    public void Live_nodes_vms_are_in_the_view_and_others_are_not()
    {
        var view = Build(0, new() { [B] = 1 }, [Claim(B, (4, "g1+g2")), Claim(C, (5, "g1")), Claim(Self, (3, "g1"))], [(3, "g1")], out var conflicts);

        var four = Assert.Single(view.Remote).Value;
        Assert.Equal(B.Address, four.Node);
        Assert.Equal(["g1", "g2"], four.Groups);
        Assert.Empty(view.RefusedLocal);
        Assert.Empty(conflicts);
    }

    [Fact]
    public void An_old_incarnation_of_a_live_address_is_ignored()
    {
        var restarted = Node(25521, uid: 2);
        var view = Build(0, new() { [restarted] = 1 }, [Claim(B, (4, "g1")), Claim(restarted, (6, "g1"))], [], out _);
        Assert.Equal([6ul], view.Remote.Keys);
    }

    [Fact]
    public void A_cid_an_older_node_serves_refuses_ours()
    {
        var view = Build(1, new() { [B] = 0 }, [Claim(B, (3, "g1"))], [(3, "g1"), (4, "g1")], out var conflicts);

        Assert.Equal(B.Address, view.Remote[3].Node);
        Assert.Contains("already served by the VM on akka.tcp://vhost-device-vsock@127.0.0.1:25521", view.RefusedLocal[3]);
        Assert.False(view.RefusedLocal.ContainsKey(4));
        Assert.Equal($"CID 3 is configured on more than one node: served by {B.Address}, refused on {Self.Address}", Assert.Single(conflicts));
    }

    [Fact]
    public void Our_cid_wins_against_a_younger_node()
    {
        var view = Build(0, new() { [B] = 1 }, [Claim(B, (3, "g1"))], [(3, "g1")], out var conflicts);

        Assert.Empty(view.Remote);
        Assert.Empty(view.RefusedLocal);
        Assert.Equal($"CID 3 is configured on more than one node: served by {Self.Address}, refused on {B.Address}", Assert.Single(conflicts));
    }

    [Fact]
    public void While_we_are_not_up_any_live_node_wins()
    {
        var view = Build(int.MaxValue, new() { [B] = 0 }, [Claim(B, (3, "g1"))], [(3, "g1")], out _);
        Assert.True(view.RefusedLocal.ContainsKey(3));
    }

    [Fact]
    public void Between_two_other_nodes_the_older_one_wins_and_equal_ages_go_by_address()
    {
        var older = Build(0, new() { [B] = 2, [C] = 1 }, [Claim(B, (5, "g1")), Claim(C, (5, "g2"))], [], out _);
        Assert.Equal(C.Address, older.Remote[5].Node);

        var tie = Build(0, new() { [B] = 1, [C] = 1 }, [Claim(C, (5, "g2")), Claim(B, (5, "g1"))], [], out _);
        Assert.Equal(B.Address, tie.Remote[5].Node);
    }

    [Fact]
    public void Views_compare_by_content()
    {
        var one = Build(0, new() { [B] = 1 }, [Claim(B, (4, "g1"))], [], out _);
        var two = Build(0, new() { [B] = 1 }, [Claim(B, (4, "g1"))], [], out _);
        var other = Build(0, new() { [B] = 1 }, [Claim(B, (4, "g2"))], [], out _);
        Assert.Equal(one, two);
        Assert.NotEqual(one, other);
    }
}
