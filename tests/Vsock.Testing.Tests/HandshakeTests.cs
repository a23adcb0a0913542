using System.Buffers.Binary;
using Vsock.Testing.VhostUser;

namespace Vsock.Testing.Tests;

public sealed class HandshakeTests
{
    [Fact]
    public async Task Sends_qemu_7_2_start_sequence_with_the_right_payloads_and_fds()
    {
        using var backend = new FakeBackend();
        await using var guest = SyntheticGuest.Connect(backend.SocketPath);
        Assert.True(backend.Enabled.Wait(TimeSpan.FromSeconds(5)));

        var messages = backend.Snapshot();
        uint[] expected =
        [
            VhostUserRequest.GetFeatures, VhostUserRequest.GetProtocolFeatures, VhostUserRequest.SetProtocolFeatures,
            VhostUserRequest.GetQueueNum, VhostUserRequest.SetOwner, VhostUserRequest.GetConfig, VhostUserRequest.SetFeatures,
            VhostUserRequest.SetMemTable,
            VhostUserRequest.SetVringNum, VhostUserRequest.SetVringBase, VhostUserRequest.SetVringAddr, VhostUserRequest.SetVringKick, VhostUserRequest.SetVringCall,
            VhostUserRequest.SetVringNum, VhostUserRequest.SetVringBase, VhostUserRequest.SetVringAddr, VhostUserRequest.SetVringKick, VhostUserRequest.SetVringCall,
            VhostUserRequest.SetVringEnable, VhostUserRequest.SetVringEnable, VhostUserRequest.GetFeatures,
        ];
        Assert.Equal(expected, messages.Select(m => m.Request).ToArray());

        // Only SET_MEM_TABLE asks for an ack; every message is version 1.
        Assert.All(messages, m => Assert.Equal(1u, m.Flags & 3));
        Assert.Equal([VhostUserRequest.SetMemTable], messages.Where(m => (m.Flags & VhostUserFlags.NeedReply) != 0).Select(m => m.Request));

        // Protocol features: ours ∩ {MQ, REPLY_ACK, CONFIG}; the offered BACKEND_REQ bit is not taken.
        Assert.Equal(VhostUserProtocolFeatures.Mq | VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.Config, backend.AckedProtocolFeatures);
        // VERSION_1 + EVENT_IDX + PROTOCOL_FEATURES; INDIRECT only for the indirect RX layout.
        Assert.Equal(VirtioFeatures.Version1 | VirtioFeatures.EventIdx | VirtioFeatures.ProtocolFeatures, backend.AckedFeatures);
        Assert.Equal(7ul, guest.GuestCid);
        Assert.Equal(3ul, guest.QueueCount);

        var memTable = messages.Single(m => m.Request == VhostUserRequest.SetMemTable);
        Assert.Equal(40, memTable.Payload.Length);
        Assert.Equal(1, memTable.FdCount);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(memTable.Payload));
        Assert.Equal(0ul, BinaryPrimitives.ReadUInt64LittleEndian(memTable.Payload.AsSpan(8)));
        Assert.Equal(64ul << 20, BinaryPrimitives.ReadUInt64LittleEndian(memTable.Payload.AsSpan(16)));
        Assert.Equal(0x7f00_0000_0000ul, BinaryPrimitives.ReadUInt64LittleEndian(memTable.Payload.AsSpan(24)));

        var config = messages.Single(m => m.Request == VhostUserRequest.GetConfig);
        Assert.Equal(20, config.Payload.Length);
        Assert.Equal(8u, BinaryPrimitives.ReadUInt32LittleEndian(config.Payload.AsSpan(4)));

        foreach (var (ring, index) in new[] { (0, 8), (1, 13) })
        {
            var num = messages[index];
            Assert.Equal((uint)ring, BinaryPrimitives.ReadUInt32LittleEndian(num.Payload));
            Assert.Equal(128u, BinaryPrimitives.ReadUInt32LittleEndian(num.Payload.AsSpan(4)));
            Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(messages[index + 1].Payload.AsSpan(4)));
            var addr = messages[index + 2].Payload;
            Assert.Equal(40, addr.Length);
            Assert.All(new[] { 8, 16, 24 }, o => Assert.True(BinaryPrimitives.ReadUInt64LittleEndian(addr.AsSpan(o)) > 0x7f00_0000_0000ul));
            Assert.Equal(1, messages[index + 3].FdCount);
            Assert.Equal((ulong)ring, BinaryPrimitives.ReadUInt64LittleEndian(messages[index + 3].Payload));
            Assert.Equal(1, messages[index + 4].FdCount);
        }
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(messages[^2].Payload.AsSpan(4)));
    }

    [Fact]
    public async Task Without_reply_ack_or_event_idx_nothing_waits_for_acks_and_event_idx_is_not_acked()
    {
        using var backend = new FakeBackend
        {
            Features = VirtioFeatures.Version1 | VirtioFeatures.ProtocolFeatures,
            ProtocolFeatures = VhostUserProtocolFeatures.Mq | VhostUserProtocolFeatures.Config,
        };
        await using var guest = SyntheticGuest.Connect(backend.SocketPath);
        Assert.True(backend.Enabled.Wait(TimeSpan.FromSeconds(5)));
        Assert.Equal(VirtioFeatures.Version1 | VirtioFeatures.ProtocolFeatures, backend.AckedFeatures);
        Assert.DoesNotContain(backend.Snapshot(), m => (m.Flags & VhostUserFlags.NeedReply) != 0);
    }

    [Fact]
    public void A_reply_with_wrong_flags_is_a_protocol_error()
    {
        using var backend = new FakeBackend { ReplyFlags = VhostUserFlags.Reply | VhostUserFlags.Version | VhostUserFlags.NeedReply };
        var e = Assert.Throws<VhostUserProtocolException>(() => SyntheticGuest.Connect(backend.SocketPath));
        Assert.Contains("flags", e.Message);
    }

    [Fact]
    public void A_back_end_without_config_is_refused_like_qemu_does()
    {
        using var backend = new FakeBackend { ProtocolFeatures = VhostUserProtocolFeatures.Mq };
        var e = Assert.Throws<VhostUserProtocolException>(() => SyntheticGuest.Connect(backend.SocketPath));
        Assert.Contains("CONFIG", e.Message);
    }

    [Fact]
    public void A_missing_socket_fails_after_the_wait()
    {
        var path = Path.Combine(Path.GetTempPath(), $"no-such-{Guid.NewGuid():N}.sock");
        var options = new SyntheticGuestOptions { SocketWaitTimeout = TimeSpan.FromMilliseconds(50) };
        var e = Assert.Throws<Vsock.Device.Interop.LinuxException>(() => SyntheticGuest.Connect(path, options));
        Assert.Equal(Vsock.Device.Interop.Errno.ENOENT, e.Errno);
    }
}
