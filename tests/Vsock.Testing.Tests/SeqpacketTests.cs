using Vsock.Device.Interop;
using Vsock.Testing.Packets;
using Vsock.Testing.VhostUser;

namespace Vsock.Testing.Tests;

/// <summary>The guest's SEQPACKET sockets against a scripted fake device: negotiation, messages each way, types.</summary>
public sealed class SeqpacketTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);
    private const ulong Cid = 7;
    private const ulong Features = VirtioFeatures.Version1 | VirtioFeatures.EventIdx | VirtioFeatures.ProtocolFeatures |
        VirtioFeatures.IndirectDesc | VirtioFeatures.VsockSeqpacket;

    private static VsockHeader FromHost(VsockOp op, uint srcPort, uint dstPort, uint len = 0, uint flags = 0, uint bufAlloc = 65536,
        uint fwdCnt = 0, ushort type = VsockWire.TypeSeqpacket) =>
        new(2, Cid, srcPort, dstPort, len, type, (ushort)op, flags, bufAlloc, fwdCnt);

    private static async Task<VsockHeader> WaitForTx(FakeBackend backend, Func<VsockHeader, bool> match)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (DateTime.UtcNow < deadline)
        {
            var hits = backend.TxSnapshot().Select(p => p.Header).Where(match).ToList();
            if (hits.Count > 0)
                return hits[0];
            await Task.Delay(5);
        }
        throw new TimeoutException("packet not sent");
    }

    private static async Task<GuestStream> AcceptSeqpacket(FakeBackend backend, SyntheticGuest guest, uint bufAlloc = 65536)
    {
        var listener = guest.Listen(700, SocketKind.Seqpacket);
        backend.Inject(FromHost(VsockOp.Request, 9, 700, bufAlloc: bufAlloc), []);
        var stream = await listener.AcceptAsync().WaitAsync(Timeout);
        Assert.True(stream.IsSeqpacket);
        return stream;
    }

    [Fact]
    public async Task The_driver_negotiates_seqpacket_only_when_offered_and_without_it_refuses_seqpacket_sockets()
    {
        using (var backend = new FakeBackend { Features = Features })
        {
            await using var guest = SyntheticGuest.Connect(backend.SocketPath);
            Assert.True(guest.SeqpacketNegotiated);
            Assert.NotEqual(0ul, backend.AckedFeatures & VirtioFeatures.VsockSeqpacket);
        }
        using (var backend = new FakeBackend())
        {
            await using var guest = SyntheticGuest.Connect(backend.SocketPath);
            Assert.False(guest.SeqpacketNegotiated);
            Assert.Throws<NotSupportedException>(() => guest.Listen(700, SocketKind.Seqpacket));
            await Assert.ThrowsAsync<NotSupportedException>(() => guest.ConnectAsync(2, 5000, Timeout, kind: SocketKind.Seqpacket));
            // Linux resets a SEQPACKET packet it cannot take.
            backend.Inject(FromHost(VsockOp.Request, 9, 700), []);
            var rst = await WaitForTx(backend, h => h.Operation == VsockOp.Rst);
            Assert.Equal(VsockWire.TypeSeqpacket, rst.Type);
        }
    }

    [Fact]
    public async Task A_message_goes_as_packets_within_credit_with_eom_and_eor_on_the_last_only()
    {
        using var backend = new FakeBackend { Features = Features };
        await using var guest = SyntheticGuest.Connect(backend.SocketPath, new SyntheticGuestOptions { MaxPacketPayload = 300 });
        var stream = await AcceptSeqpacket(backend, guest, bufAlloc: 1000);

        var message = Enumerable.Range(0, 1000).Select(i => (byte)i).ToArray();
        await stream.SendMessageAsync(message, endOfRecord: true).AsTask().WaitAsync(Timeout);
        var second = stream.SendMessageAsync(new byte[10]).AsTask();
        await Task.Delay(100);
        Assert.False(second.IsCompleted); // no credit left: it waits, whole
        backend.Inject(FromHost(VsockOp.CreditUpdate, 9, 700, bufAlloc: 1000, fwdCnt: 1000), []);
        await second.WaitAsync(Timeout);
        await guest.WaitForTxDrainedAsync(Timeout);

        var rw = backend.TxSnapshot().Where(p => p.Header.Operation == VsockOp.Rw).ToList();
        Assert.All(rw, p => Assert.Equal(VsockWire.TypeSeqpacket, p.Header.Type));
        Assert.Equal([300, 300, 300, 100, 10], rw.Select(p => (int)p.Header.Len));
        Assert.Equal([0u, 0u, 0u, VsockWire.SeqEom | VsockWire.SeqEor, VsockWire.SeqEom], rw.Select(p => p.Header.Flags));
        Assert.Equal(message, rw.Take(4).SelectMany(p => p.Payload).ToArray());
    }

    [Fact]
    public async Task A_message_beyond_the_peer_s_buffer_is_refused_with_nothing_sent()
    {
        using var backend = new FakeBackend { Features = Features };
        await using var guest = SyntheticGuest.Connect(backend.SocketPath);
        var stream = await AcceptSeqpacket(backend, guest, bufAlloc: 1000);
        await Assert.ThrowsAsync<GuestMessageTooLargeException>(() => stream.SendMessageAsync(new byte[1001]).AsTask());
        Assert.DoesNotContain(backend.TxSnapshot(), p => p.Header.Operation == VsockOp.Rw);
    }

    [Fact]
    public async Task Received_packets_make_messages_at_eom_a_short_buffer_truncates_and_each_read_sends_a_credit_update()
    {
        using var backend = new FakeBackend { Features = Features };
        await using var guest = SyntheticGuest.Connect(backend.SocketPath);
        var stream = await AcceptSeqpacket(backend, guest);
        backend.Inject(FromHost(VsockOp.Rw, 9, 700, len: 3), [1, 2, 3]);
        backend.Inject(FromHost(VsockOp.Rw, 9, 700, len: 2, flags: VsockWire.SeqEom | VsockWire.SeqEor), [4, 5]);
        backend.Inject(FromHost(VsockOp.Rw, 9, 700, len: 4, flags: VsockWire.SeqEom), [6, 7, 8, 9]);

        var buffer = new byte[10];
        var first = await stream.ReceiveMessageAsync(buffer).AsTask().WaitAsync(Timeout);
        Assert.Equal(new GuestMessage(5, 5, EndOfRecord: true, EndOfStream: false), first);
        Assert.Equal([1, 2, 3, 4, 5], buffer[..5]);
        var second = await stream.ReceiveMessageAsync(buffer.AsMemory(0, 2)).AsTask().WaitAsync(Timeout);
        Assert.True(second.Truncated);
        Assert.Equal([6, 7], buffer[..2]);
        var update = await WaitForTx(backend, h => h.Operation == VsockOp.CreditUpdate && h.FwdCnt == 9);
        Assert.Equal(VsockWire.TypeSeqpacket, update.Type);
        Assert.Equal(0, stream.MessagesBuffered);

        backend.Inject(FromHost(VsockOp.Shutdown, 9, 700, flags: VsockWire.ShutdownSend), []);
        var eof = await stream.ReceiveMessageAsync(buffer).AsTask().WaitAsync(Timeout);
        Assert.True(eof.EndOfStream);
        Assert.Empty(guest.Violations);
    }

    [Fact]
    public async Task A_packet_of_the_other_type_is_reset_and_leaves_the_socket_alone()
    {
        using var backend = new FakeBackend { Features = Features };
        await using var guest = SyntheticGuest.Connect(backend.SocketPath);
        using var streamListener = guest.Listen(800);
        backend.Inject(FromHost(VsockOp.Request, 9, 800), []); // SEQPACKET to a STREAM listener
        var rst = await WaitForTx(backend, h => h.Operation == VsockOp.Rst && h.SrcPort == 800);
        Assert.Equal(VsockWire.TypeSeqpacket, rst.Type);
        Assert.Equal(0, streamListener.PendingCount);

        var stream = await AcceptSeqpacket(backend, guest);
        backend.Inject(FromHost(VsockOp.Rw, 9, 700, len: 1, type: VsockWire.TypeStream), [1]);
        await WaitForTx(backend, h => h.Operation == VsockOp.Rst && h.SrcPort == 700 && h.Type == VsockWire.TypeStream);
        backend.Inject(FromHost(VsockOp.Rw, 9, 700, len: 1, flags: VsockWire.SeqEom), [2]);
        var message = await stream.ReceiveMessageAsync(new byte[4]).AsTask().WaitAsync(Timeout);
        Assert.Equal(1, message.Length);
        Assert.False(stream.IsPeerReset);
    }
}
