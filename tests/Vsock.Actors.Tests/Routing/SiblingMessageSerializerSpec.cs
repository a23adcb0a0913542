using System.Buffers;
using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Akka.DistributedData;
using Akka.TestKit.Xunit2;
using Vsock.Actors.Hosting;
using Vsock.Actors.Routing;
using Vsock.Device.Packets;
using static Vsock.Actors.Routing.ClusterRegistryProtocol;
using static Vsock.Actors.Routing.GroupRouterProtocol;

namespace Vsock.Actors.Tests.Routing;

/// <summary>
/// Every message that crosses cluster nodes has our binary serializer, bound in hocon/vsock-cluster.hocon exactly as
/// the daemon loads it (none may fall back to Akka's default JSON), and comes back equal; bad frames fail cleanly.
/// </summary>
public sealed class SiblingMessageSerializerSpec() : TestKit(Config)
{
    private static Config Config =>
        ConfigurationFactory.ParseString(File.ReadAllText(VsockHostingExtensions.ClusterHoconPath))
            .WithFallback(DistributedData.DefaultConfig());

    private static VsockHeader Header(uint len = 0, ushort op = VsockOp.Rw) => new()
    {
        SrcCid = 3, DstCid = 4, SrcPort = 40001, DstPort = 1234, Len = len, Type = VsockType.Stream, Op = op,
        Flags = 0, BufAlloc = 262144, FwdCnt = 777,
    };

    /// <summary>Each message type that one node sends another.</summary>
    public static TheoryData<string> CrossingMessages => new() { "packet", "control packet", "unreachable", "guest reset", "node vms" };

    private static object Make(string kind) => kind switch
    {
        "packet" => new SiblingPacket(Header(100), Payload(100)),
        "control packet" => new SiblingPacket(Header(0, VsockOp.CreditUpdate), null),
        "unreachable" => new SiblingUnreachable(Header(0, VsockOp.Request), "CID 3 and CID 4 share no group"),
        "guest reset" => new SiblingGuestReset(4294967294),
        "node vms" => new NodeVms("akka.tcp://vhost-device-vsock@127.0.0.1:25520", -12345,
            [new NodeVm(3, ["g1", "groupé"]), new NodeVm(4, ["default"])]),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    private static byte[] Payload(int length)
    {
        var data = ArrayPool<byte>.Shared.Rent(length);
        for (var i = 0; i < length; i++)
            data[i] = (byte)(i * 7);
        return data;
    }

    [Theory]
    [MemberData(nameof(CrossingMessages))]
    public void Every_message_that_crosses_nodes_has_the_binary_serializer_and_round_trips(string kind)
    {
        var message = Make(kind);
        var serializer = Sys.Serialization.FindSerializerFor(message);
        Assert.IsType<SiblingMessageSerializer>(serializer);
        Assert.Equal(SiblingMessageSerializer.SerializerIdentifier, serializer.Identifier);

        var bytes = serializer.ToBinary(message);
        var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
        var back = Sys.Serialization.Deserialize(bytes, serializer.Identifier, manifest);

        switch (message)
        {
            case SiblingPacket sent:
                var received = Assert.IsType<SiblingPacket>(back);
                Assert.Equal(sent.Header, received.Header);
                Assert.Equal(VsockConstants.HeaderSize + (int)sent.Header.Len, bytes.Length); // header and payload, nothing else
                if (sent.Data is null)
                    Assert.Null(received.Data);
                else
                    Assert.Equal(sent.Data.AsSpan(0, (int)sent.Header.Len).ToArray(), received.Data!.AsSpan(0, (int)received.Header.Len).ToArray());
                break;
            default:
                Assert.Equal(message, back);
                break;
        }
    }

    [Fact]
    public void A_full_64KiB_packet_fits_the_remote_frame()
    {
        var packet = new SiblingPacket(Header(VsockConstants.MaxPacketPayload), Payload((int)VsockConstants.MaxPacketPayload));
        var bytes = Sys.Serialization.FindSerializerFor(packet).ToBinary(packet);
        var frame = Sys.Settings.Config.GetByteSize("akka.remote.dot-netty.tcp.maximum-frame-size");
        Assert.True(bytes.Length + 1024 < frame, $"{bytes.Length} bytes (plus Akka's envelope) against a frame of {frame}");
    }

    [Fact]
    public void The_registry_map_carries_its_values_with_the_binary_serializer()
    {
        var node = new UniqueAddress(new Address("akka.tcp", "vhost-device-vsock", "127.0.0.1", 25520), 42);
        var value = (NodeVms)Make("node vms");
        var map = LWWDictionary.Create(node, value.Key, value);
        var serializer = Sys.Serialization.FindSerializerFor(map);
        var back = (LWWDictionary<string, NodeVms>)Sys.Serialization.Deserialize(
            serializer.ToBinary(map), serializer.Identifier, Akka.Serialization.Serialization.ManifestFor(serializer, map));
        Assert.Equal(value, back[value.Key]);
    }

    [Theory]
    [InlineData("P", 10)]                      // shorter than a header
    [InlineData("P", 44 + 5)]                  // header says 100 payload bytes, 5 are there
    [InlineData("U", 20)]
    [InlineData("R", 7)]
    [InlineData("V", 3)]
    public void A_truncated_frame_fails_as_a_serialization_error(string manifest, int length)
    {
        var bytes = new byte[length];
        if (length >= VsockConstants.HeaderSize)
            Header(100).Write(bytes);
        var serializer = new SiblingMessageSerializer((ExtendedActorSystem)Sys);
        Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, manifest));
    }

    [Fact]
    public void A_packet_longer_than_a_vsock_packet_may_be_is_refused()
    {
        var serializer = new SiblingMessageSerializer((ExtendedActorSystem)Sys);
        var bytes = new byte[VsockConstants.HeaderSize + VsockConstants.MaxPacketPayload + 1];
        Header(VsockConstants.MaxPacketPayload + 1).Write(bytes);
        Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, "P"));
    }

    [Fact]
    public void A_registry_entry_with_a_count_larger_than_its_bytes_is_refused()
    {
        var serializer = new SiblingMessageSerializer((ExtendedActorSystem)Sys);
        var bytes = serializer.ToBinary(Make("node vms"));
        var countAt = sizeof(ushort) + "akka.tcp://vhost-device-vsock@127.0.0.1:25520".Length + sizeof(int);
        bytes[countAt + 3] = 0x7f; // the VM count's high byte: far more VMs than bytes
        Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, "V"));
    }
}
