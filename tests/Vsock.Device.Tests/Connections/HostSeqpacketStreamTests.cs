using System.Net.Sockets;
using System.Text;
using Vsock.Device.Connections;
using Vsock.Device.Interop;
using Vsock.Device.Packets;
using Vsock.Device.Tests.TestSupport;

namespace Vsock.Device.Tests.Connections;

/// <summary>
/// A SEQPACKET host stream between fake guest rings and a real unix SOCK_SEQPACKET pair, driven as the device drives
/// it (see <see cref="HostStreamTests"/>): message boundaries at RX-buffer and credit boundaries, EOM, reassembly of
/// guest messages over packets and TX turns, the TX buffer as a queue of whole messages, and hostile guests.
/// </summary>
public sealed class HostSeqpacketStreamTests : IDisposable
{
    private const uint TxBufferSize = 262144;
    private const uint GuestBufAlloc = 256 * 1024;
    private static readonly ConnectionKey Key = new(VsockConstants.HostCid, 1024, 5000);
    private readonly DeviceRig _rig = new();
    private readonly FakeStreamHost _host;
    private readonly UnixSocket _ours;
    private readonly Socket _peer;
    private HostSeqpacketStream? _stream;
    private uint _guestFwdCnt;

    public HostSeqpacketStreamTests()
    {
        _host = new FakeStreamHost(_rig.DeviceLog);
        var (ours, peer) = UnixSocket.Pair(SocketKind.Seqpacket);
        _ours = ours;
        _peer = peer.ToSocket();
        _peer.ReceiveTimeout = 5000;
        _peer.SendBufferSize = 1 << 20;
        _rig.PostRxBuffers(128);
    }

    public void Dispose()
    {
        _stream?.Dispose();
        _ours.Dispose();
        _peer.Dispose();
        _rig.Dispose();
    }

    private HostSeqpacketStream Stream => _stream ?? throw new InvalidOperationException("no stream yet");

    private List<RxPacket> Rx()
    {
        _rig.RunRx(Stream);
        FakeStreamHost.EndTurn(Stream);
        return _rig.TakeRx();
    }

    private void FromGuest(ushort op, uint flags = 0, uint bufAlloc = GuestBufAlloc) =>
        _rig.SendTx(DeviceRig.FromGuest(Key, op, flags, bufAlloc, _guestFwdCnt, VsockType.SeqPacket));

    private void GuestPacket(ReadOnlySpan<byte> payload, uint flags) =>
        _rig.SendTx(DeviceRig.FromGuest(Key, VsockOp.Rw, flags, GuestBufAlloc, _guestFwdCnt, VsockType.SeqPacket), payload);

    private void Tx() => _rig.RunTx(Stream);

    /// <summary>The guest read what it was sent: its next packet (a credit update) tells us.</summary>
    private void GuestConsumed(uint bytes)
    {
        _guestFwdCnt += bytes;
        FromGuest(VsockOp.CreditUpdate);
        Tx();
    }

    /// <summary>Host-initiated set-up up to the client reading the one message "OK 5000\n".</summary>
    private void Establish(uint guestBufAlloc = GuestBufAlloc, uint txBufferSize = TxBufferSize)
    {
        _stream = new HostSeqpacketStream(_host, txBufferSize, _ours.Handle, sendsOkLine: true, HostSocketFamily.Unix);
        Stream.OnRegistered();
        Stream.OpenToGuest(Key);
        var request = Assert.Single(Rx()).Header;
        Assert.Equal(VsockOp.Request, request.Op);
        Assert.Equal(VsockType.SeqPacket, request.Type);
        FromGuest(VsockOp.Response, bufAlloc: guestBufAlloc);
        Tx();
        Assert.True(Stream.Has(StreamStatus.Established));
        Assert.Equal("OK 5000\n", Encoding.ASCII.GetString(ReceiveMessage()));
    }

    private byte[] ReceiveMessage()
    {
        var buffer = new byte[1 << 20];
        var n = _peer.Receive(buffer);
        return buffer.AsSpan(0, n).ToArray();
    }

    /// <summary>
    /// For a test that needs RX buffers of its own: a stream on <paramref name="rig"/> that we open (REQUEST, which
    /// takes one of the buffers, then the guest's RESPONSE), after <paramref name="buffers"/> RX buffers of
    /// <paramref name="length"/> bytes are posted.
    /// </summary>
    private HostSeqpacketStream OpenOnOwnRig(DeviceRig rig, int buffers, uint length = 4096)
    {
        var stream = new HostSeqpacketStream(new FakeStreamHost(rig.DeviceLog), TxBufferSize, _ours.Handle, sendsOkLine: false, HostSocketFamily.Unix);
        try
        {
            rig.PostRxBuffers(buffers, length);
            stream.OnRegistered();
            stream.OpenToGuest(Key);
            rig.RunRx(stream);
            FakeStreamHost.EndTurn(stream);
            Assert.Single(rig.TakeRx()); // REQUEST
            rig.SendTx(DeviceRig.FromGuest(Key, VsockOp.Response, 0, GuestBufAlloc, 0, VsockType.SeqPacket));
            rig.RunTx(stream);
            return stream;
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    private static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    /// <summary>The guest's view: RW packets cut into messages at EOM.</summary>
    private static List<byte[]> Messages(IEnumerable<RxPacket> packets, out bool trailingPart)
    {
        var messages = new List<byte[]>();
        var current = new List<byte>();
        foreach (var p in packets.Where(p => p.Op == VsockOp.Rw))
        {
            Assert.Equal(VsockType.SeqPacket, p.Header.Type);
            current.AddRange(p.Payload);
            if ((p.Header.Flags & VsockSeqFlags.Eom) != 0)
            {
                messages.Add([.. current]);
                current.Clear();
            }
        }
        trailingPart = current.Count > 0;
        return messages;
    }

    // ------------------------------------------------------------------ host → guest

    [Theory]
    [InlineData(1)]
    [InlineData(4051)]
    [InlineData(4052)]
    [InlineData(4053)]
    [InlineData(65536)]
    [InlineData(65537)]
    [InlineData(200000)]
    public void A_host_message_becomes_one_guest_message_over_as_many_rx_buffers_as_it_needs(int length)
    {
        Establish();
        var message = Pattern(length, length);
        _peer.Send(message);
        Stream.OnSocketReady(EpollEvents.In);
        var packets = Rx();
        var rw = packets.Where(p => p.Op == VsockOp.Rw).ToList();
        Assert.Equal((length + 4051) / 4052, rw.Count); // 4 KiB buffers: 4052 payload bytes each
        Assert.All(rw.SkipLast(1), p => Assert.Equal(0u, p.Header.Flags));
        Assert.Equal(VsockSeqFlags.Eom, rw[^1].Header.Flags);
        Assert.Equal(message, Assert.Single(Messages(packets, out var partial)));
        Assert.False(partial);
        Assert.Equal((uint)length, Stream.CreditSnapshot.TxCnt);
    }

    [Fact]
    public void Several_host_messages_keep_their_boundaries()
    {
        Establish();
        var sent = new[] { Pattern(10, 1), Pattern(5000, 2), Pattern(1, 3), Pattern(8104, 4) };
        foreach (var m in sent)
            _peer.Send(m);
        Stream.OnSocketReady(EpollEvents.In);
        Assert.Equal(sent, Messages(Rx(), out _));
    }

    [Fact]
    public void A_message_waits_in_the_socket_until_the_guest_s_credit_holds_all_of_it()
    {
        Establish(guestBufAlloc: 10000);
        _peer.Send(Pattern(6000, 1));
        _peer.Send(Pattern(6000, 2));
        Stream.OnSocketReady(EpollEvents.In);
        var first = Rx();
        Assert.Single(Messages(first, out _));
        // 4000 bytes of credit left: the second message waits whole, and the guest is asked for credit.
        Assert.Contains(first, p => p.Op == VsockOp.CreditRequest);
        Assert.Equal(6000u, Stream.CreditSnapshot.TxCnt);
        Assert.Equal(1, _host.Counters.CreditStallsTowardGuest); // the metric counts SEQPACKET stalls too

        GuestConsumed(6000);
        var second = Rx();
        Assert.Equal(Pattern(6000, 2), Assert.Single(Messages(second, out _)));
    }

    [Fact]
    public void A_message_larger_than_the_guest_s_buffer_resets_the_stream_with_a_log_line()
    {
        Establish(guestBufAlloc: 10000);
        _peer.Send(Pattern(10001, 1));
        Stream.OnSocketReady(EpollEvents.In);
        var packets = Rx();
        Assert.DoesNotContain(packets, p => p.Op == VsockOp.Rw);
        Assert.Equal(VsockOp.Rst, packets[^1].Op);
        Assert.Contains(_rig.Log.Warnings, w => w.Contains("can never fit the guest's buffer"));
        Assert.True(Stream.Has(StreamStatus.Finished));
    }

    [Fact]
    public void Without_enough_rx_buffers_the_message_stays_in_the_socket_and_no_buffer_is_used()
    {
        using var rig = new DeviceRig();
        var stream = OpenOnOwnRig(rig, 2);
        try
        {

            _peer.Send(Pattern(10000, 7)); // three 4 KiB buffers' worth; one is posted
            stream.OnSocketReady(EpollEvents.In);
            Assert.Equal(RxFill.OutOfBuffers, rig.RunRx(stream));
            FakeStreamHost.EndTurn(stream);
            Assert.Empty(rig.TakeRx());
            Assert.Equal(0u, stream.CreditSnapshot.TxCnt);

            rig.PostRxBuffers(2);
            rig.RunRx(stream);
            Assert.Equal(Pattern(10000, 7), Assert.Single(Messages(rig.TakeRx(), out _)));
        }
        finally
        {
            stream.Dispose();
        }
    }

    [Fact]
    public void A_message_needing_more_buffers_than_one_read_takes_goes_partly_through_a_spill_and_keeps_its_eom_last()
    {
        using var rig = new DeviceRig();
        var stream = OpenOnOwnRig(rig, 200, length: 512); // 468 payload bytes each: a 64 KiB message needs 141
        try
        {

            var message = Pattern(65536, 3);
            _peer.Send(message);
            _peer.Send(Pattern(100, 4));
            stream.OnSocketReady(EpollEvents.In);
            rig.RunRx(stream);
            var packets = rig.TakeRx();
            var messages = Messages(packets, out var partial);
            Assert.False(partial);
            Assert.Equal([message, Pattern(100, 4)], messages);
            Assert.False(stream.HoldsSpill);
            Assert.Equal(65636u, stream.CreditSnapshot.TxCnt);
        }
        finally
        {
            stream.Dispose();
        }
    }

    [Fact]
    public void A_spilled_tail_waits_for_credit_and_the_next_message_waits_behind_it()
    {
        using var rig = new DeviceRig();
        var stream = OpenOnOwnRig(rig, 71, length: 512); // one for the REQUEST, 70 for data
        try
        {

            _peer.Send(Pattern(40000, 5)); // 86 buffers: 64 in the read, the rest spilled
            _peer.Send(Pattern(10, 6));
            stream.OnSocketReady(EpollEvents.In);
            rig.RunRx(stream);
            FakeStreamHost.EndTurn(stream);
            var first = rig.TakeRx();
            Assert.Equal(70, first.Count(p => p.Op == VsockOp.Rw)); // the ring ran dry in the spill
            Assert.True(stream.HoldsSpill);
            Assert.Empty(Messages(first, out var partial));
            Assert.True(partial);

            rig.PostRxBuffers(100, length: 512);
            rig.RunRx(stream);
            var all = first.Concat(rig.TakeRx()).ToList();
            Assert.Equal([Pattern(40000, 5), Pattern(10, 6)], Messages(all, out partial));
            Assert.False(partial);
        }
        finally
        {
            stream.Dispose();
        }
    }

    [Fact]
    public void An_empty_host_message_is_dropped_and_host_eof_is_a_shutdown_after_the_messages()
    {
        Establish();
        _peer.Send(Pattern(10, 1));
        _peer.Send(ReadOnlySpan<byte>.Empty);
        _peer.Send(Pattern(20, 2));
        _peer.Shutdown(SocketShutdown.Send);
        Stream.OnSocketReady(EpollEvents.In | EpollEvents.RdHup);
        var packets = Rx();
        Assert.Equal([Pattern(10, 1), Pattern(20, 2)], Messages(packets, out _));
        Assert.Equal(VsockOp.Shutdown, packets[^1].Op);
        Assert.Equal(VsockShutdownFlags.Send, packets[^1].Header.Flags);
    }

    // ------------------------------------------------------------------ guest → host

    [Fact]
    public void A_guest_message_over_several_packets_in_one_turn_is_one_host_message()
    {
        Establish();
        var message = Pattern(150000, 9);
        GuestPacket(message.AsSpan(0, 65536), 0);
        GuestPacket(message.AsSpan(65536, 65536), 0);
        GuestPacket(message.AsSpan(131072), VsockSeqFlags.Eom | VsockSeqFlags.Eor);
        GuestPacket(Pattern(7, 1), VsockSeqFlags.Eom);
        Tx();
        Assert.Equal(message, ReceiveMessage());
        Assert.Equal(Pattern(7, 1), ReceiveMessage());
        Assert.False(Stream.HoldsTxStorage); // both went straight from guest memory
        Assert.Equal(150007u, Stream.CreditSnapshot.FwdCnt);
    }

    [Fact]
    public void A_guest_message_over_two_turns_goes_through_the_tx_buffer_as_one_message()
    {
        Establish();
        var message = Pattern(10000, 4);
        GuestPacket(message.AsSpan(0, 4000), 0);
        Tx();
        Assert.Equal(0, _peer.Available);
        GuestPacket(message.AsSpan(4000), VsockSeqFlags.Eom);
        Tx();
        Assert.Equal(message, ReceiveMessage());
        Assert.Equal(0, Stream.TxMessagesQueued);
        Assert.Equal(0u, Stream.TxBuffered);
    }

    [Fact]
    public void Messages_the_socket_refuses_wait_whole_in_the_tx_buffer_and_go_in_order()
    {
        Establish();
        var sent = new List<byte[]>();
        // A unix datagram socket takes messages until its peer's queue is full; then EAGAIN, all or nothing.
        for (var i = 0; i < 2000 && Stream.TxMessagesQueued == 0; i++)
        {
            var m = Pattern(5000 + i, i);
            sent.Add(m);
            GuestPacket(m, VsockSeqFlags.Eom);
            Tx();
            Rx(); // our credit updates, as the guest would get them
        }
        Assert.True(Stream.TxMessagesQueued > 0, "the socket never refused a message");
        Assert.Equal(1, _host.Counters.HostSocketFull);
        for (var i = 0; i < 3; i++)
        {
            var m = Pattern(3000, 1000 + i);
            sent.Add(m);
            GuestPacket(m.AsSpan(0, 1000), 0);
            GuestPacket(m.AsSpan(1000), VsockSeqFlags.Eom);
            Tx();
            Rx();
        }
        var received = new List<byte[]>();
        while (received.Count < sent.Count)
        {
            received.Add(ReceiveMessage());
            Stream.OnSocketReady(EpollEvents.Out);
        }
        Assert.Equal(sent, received);
        Assert.Equal(0, Stream.TxMessagesQueued);
    }

    [Fact]
    public void The_guest_hears_of_room_freed_by_written_messages_while_its_open_message_fills_its_credit()
    {
        Establish(txBufferSize: 10000);
        GuestPacket(Pattern(6000, 1), VsockSeqFlags.Eom);
        Tx();
        Assert.Equal(Pattern(6000, 1), ReceiveMessage());
        Assert.DoesNotContain(Rx(), p => p.Op == VsockOp.CreditUpdate); // the guest still sees 4000 bytes free
        GuestPacket(Pattern(4000, 2), 0); // its view: no credit left, and no write will come until the message ends
        Tx();
        var update = Assert.Single(Rx(), p => p.Op == VsockOp.CreditUpdate);
        Assert.Equal(6000u, update.Header.FwdCnt);
    }

    [Fact]
    public void A_guest_that_never_sends_eom_is_reset_once_beyond_its_credit_and_nothing_reaches_the_host()
    {
        Establish(txBufferSize: 8192);
        GuestPacket(Pattern(4096, 1), 0);
        GuestPacket(Pattern(4096, 2), 0);
        Tx();
        Assert.Equal(0, _peer.Available);
        Assert.False(Stream.Has(StreamStatus.Finished));
        GuestPacket(Pattern(1, 3), VsockSeqFlags.Eom);
        Tx();
        Assert.Contains(_rig.Log.Warnings, w => w.Contains("beyond its credit"));
        Assert.Equal(VsockOp.Rst, Rx()[^1].Op);
        Assert.Equal(0, _peer.Available);
    }

    [Fact]
    public void A_guest_shutdown_in_the_middle_of_a_message_drops_it_and_counts_it_consumed()
    {
        Establish();
        GuestPacket(Pattern(100, 1), VsockSeqFlags.Eom);
        GuestPacket(Pattern(500, 2), 0);
        FromGuest(VsockOp.Shutdown, VsockShutdownFlags.Send);
        Tx();
        Assert.Equal(Pattern(100, 1), ReceiveMessage());
        Assert.Equal(0, _peer.Receive(new byte[10])); // EOF: the open message never went
        Assert.Equal(600u, Stream.CreditSnapshot.FwdCnt);
    }

    [Fact]
    public void Every_packet_of_the_stream_carries_the_seqpacket_type()
    {
        Establish();
        _peer.Send(Pattern(9000, 1));
        Stream.OnSocketReady(EpollEvents.In);
        FromGuest(VsockOp.CreditRequest);
        Tx();
        var packets = Rx();
        Stream.Reset();
        packets.AddRange(Rx());
        Assert.Contains(packets, p => p.Op == VsockOp.CreditUpdate);
        Assert.Contains(packets, p => p.Op == VsockOp.Rst);
        Assert.All(packets, p => Assert.Equal(VsockType.SeqPacket, p.Header.Type));
    }

    [Fact]
    public void Our_buf_alloc_is_what_the_socket_can_send_as_one_message()
    {
        _stream = new HostSeqpacketStream(_host, 64 << 20, _ours.Handle, sendsOkLine: true, HostSocketFamily.Unix);
        var largest = (uint)MessageIo.SetSendBuffer(_ours.Handle, 64 << 20);
        Assert.Equal(Math.Min(64u << 20, largest), Stream.CreditSnapshot.BufAlloc);
    }
}
