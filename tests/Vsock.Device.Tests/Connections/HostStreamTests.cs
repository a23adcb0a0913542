using System.Net.Sockets;
using System.Text;
using Vsock.Device.Connections;
using Vsock.Device.Interop;
using Vsock.Device.Packets;
using Vsock.Device.Tests.TestSupport;

namespace Vsock.Device.Tests.Connections;

/// <summary>
/// A host stream between fake guest rings (a mock driver) and a real unix socket pair, driven the way the device
/// drives it: RX turns lend it the guest's buffers, TX turns hand it the guest's packets, readiness comes from the
/// test. The socket's far end plays the host application.
/// </summary>
public sealed class HostStreamTests : IDisposable
{
    private const uint TxBufferSize = 65536;
    private static readonly ConnectionKey Key = new(VsockConstants.HostCid, 1024, 5000);
    private readonly DeviceRig _rig = new();
    private readonly FakeStreamHost _host;
    private readonly Socket _ours;
    private readonly Socket _peer;
    private HostStream? _stream;

    public HostStreamTests()
    {
        _host = new FakeStreamHost(_rig.DeviceLog);
        var (ours, peer) = UnixSocket.Pair();
        _ours = ours.ToSocket();
        _peer = peer.ToSocket();
        _peer.ReceiveTimeout = 5000;
        _rig.PostRxBuffers(64);
    }

    public void Dispose()
    {
        _stream?.Dispose();
        _ours.Dispose();
        _peer.Dispose();
        _rig.Dispose();
    }

    private HostStream Stream => _stream ?? throw new InvalidOperationException("no stream yet");

    private HostStream NewStream(uint txBufferSize = TxBufferSize, bool sendsOkLine = true) =>
        _stream = new HostStream(_host, txBufferSize, _ours.SafeHandle, sendsOkLine);

    /// <summary>The device's RX turn for the stream; returns what the guest received.</summary>
    private List<RxPacket> Rx()
    {
        _rig.RunRx(Stream);
        FakeStreamHost.EndTurn(Stream);
        return _rig.TakeRx();
    }

    private void FromGuest(ushort op, uint flags = 0, uint bufAlloc = 256 * 1024, uint fwdCnt = 0) =>
        _rig.SendTx(DeviceRig.FromGuest(Key, op, flags, bufAlloc, fwdCnt));

    private void GuestData(ReadOnlySpan<byte> payload, uint bufAlloc = 256 * 1024, uint fwdCnt = 0) =>
        _rig.SendTx(DeviceRig.FromGuest(Key, VsockOp.Rw, 0, bufAlloc, fwdCnt), payload);

    private void Tx() => _rig.RunTx(Stream);

    /// <summary>Host-initiated set-up up to the point where the client has read "OK 5000\n".</summary>
    private void Establish(uint guestBufAlloc = 256 * 1024, uint txBufferSize = TxBufferSize)
    {
        NewStream(txBufferSize);
        Stream.OnRegistered();
        Stream.OpenToGuest(Key);
        var request = Assert.Single(Rx());
        Assert.Equal(VsockOp.Request, request.Op);
        FromGuest(VsockOp.Response, bufAlloc: guestBufAlloc);
        Tx();
        Assert.True(Stream.Has(StreamStatus.Established));
        Assert.Equal("OK 5000\n", Encoding.ASCII.GetString(Receive(8)));
    }

    private byte[] Receive(int count)
    {
        var buffer = new byte[count];
        var got = 0;
        while (got < count)
        {
            var n = _peer.Receive(buffer, got, count - got, SocketFlags.None);
            if (n == 0)
                throw new EndOfStreamException($"EOF after {got} of {count} bytes");
            got += n;
        }
        return buffer;
    }

    private static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    private static byte[] Payloads(IEnumerable<RxPacket> packets) =>
        packets.Where(p => p.Op == VsockOp.Rw).SelectMany(p => p.Payload).ToArray();

    /// <summary>Makes the pair's buffers small, so the socket refuses most of a large write.</summary>
    private void ShrinkSocketBuffers()
    {
        _ours.SendBufferSize = 4096;
        _peer.ReceiveBufferSize = 4096;
    }

    // ------------------------------------------------------------------ set-up

    [Fact]
    public void A_host_initiated_stream_sends_request_and_after_the_response_writes_only_the_ok_line()
    {
        NewStream();
        Stream.OnRegistered();
        Stream.OpenToGuest(Key);
        Assert.Equal([Stream], _host.Scheduled);

        var request = Assert.Single(Rx()).Header;
        Assert.Equal(new VsockHeader
        {
            SrcCid = 2, SrcPort = 1024, DstCid = DeviceRig.GuestCid, DstPort = 5000, Type = VsockType.Stream,
            Op = VsockOp.Request, BufAlloc = TxBufferSize, FwdCnt = 0, Len = 0,
        }, request);

        FromGuest(VsockOp.Response);
        Tx();
        Assert.Equal("OK 5000\n", Encoding.ASCII.GetString(Receive(8)));
        Assert.Equal(0, _peer.Available);
        Assert.Equal(0u, Stream.CreditSnapshot.FwdCnt); // our own line is not guest data
        Assert.False(Stream.HoldsTxStorage);
        Assert.Equal(1, _host.Counters.StreamsOpened); // counted once the guest answered
    }

    [Fact]
    public void Bytes_the_host_sent_before_the_guest_answered_are_its_first_data()
    {
        NewStream();
        Stream.OnRegistered();
        Stream.OpenToGuest(Key);
        _peer.Send("early"u8);
        Assert.Equal(VsockOp.Request, Assert.Single(Rx()).Op); // nothing is read before the stream is up

        FromGuest(VsockOp.Response);
        Tx();
        Assert.Equal("OK 5000\n", Encoding.ASCII.GetString(Receive(8)));
        Assert.True(Stream.HasRxWork);
        Assert.Equal("early"u8.ToArray(), Payloads(Rx()));
    }

    [Fact]
    public void A_guest_rst_to_the_request_finishes_the_stream_without_an_answer()
    {
        NewStream();
        Stream.OnRegistered();
        Stream.OpenToGuest(Key);
        Rx();
        FromGuest(VsockOp.Rst);
        Tx();
        Assert.Equal([Stream], _host.Finished);
        Assert.False(Stream.HasRxWork);
        Assert.Empty(Rx());
        Assert.Equal(0, _peer.Available);
        Assert.Equal((0, 1), (_host.Counters.StreamsOpened, _host.Counters.StreamsRefused));
    }

    [Fact]
    public void Data_from_the_guest_before_its_response_resets_the_stream()
    {
        NewStream();
        Stream.OnRegistered();
        Stream.OpenToGuest(Key);
        Rx();
        GuestData("too soon"u8);
        Tx();
        var rst = Assert.Single(Rx());
        Assert.Equal(VsockOp.Rst, rst.Op);
        Assert.Equal([Stream], _host.Finished);
        Assert.Equal(0, _peer.Available);
    }

    [Fact]
    public void A_guest_initiated_stream_answers_response_once_connected_and_sends_no_ok_line()
    {
        _stream = new HostStream(_host, TxBufferSize, socket: null, sendsOkLine: false);
        Stream.AcceptFromGuest(Key, DeviceRig.FromGuest(Key, VsockOp.Request, bufAlloc: 1000));
        Assert.False(Stream.HasRxWork);

        Stream.OnConnected(_ours.SafeHandle);
        var response = Assert.Single(Rx());
        Assert.Equal(VsockOp.Response, response.Op);
        Assert.Equal(TxBufferSize, response.Header.BufAlloc);

        GuestData("hi"u8, bufAlloc: 1000);
        Tx();
        Assert.Equal("hi"u8.ToArray(), Receive(2));
        _peer.Send(new byte[3000]);
        Stream.OnSocketReady(EpollEvents.In);
        Assert.Equal(1000, Payloads(Rx()).Length); // the guest's buf_alloc from its REQUEST bounds what it gets
        Assert.Equal(1, _host.Counters.StreamsOpened);
    }

    [Fact]
    public void A_guest_initiated_stream_whose_connect_failed_owes_the_guest_an_rst()
    {
        _stream = new HostStream(_host, TxBufferSize, socket: null, sendsOkLine: false);
        Stream.AcceptFromGuest(Key, DeviceRig.FromGuest(Key, VsockOp.Request));
        Stream.Reset();
        var rst = Assert.Single(Rx());
        Assert.Equal(VsockOp.Rst, rst.Op);
        Assert.Equal(Key.GuestPort, rst.Header.DstPort);
        Assert.Equal([Stream], _host.Finished);
        Assert.Equal((0, 1, 0), (_host.Counters.StreamsOpened, _host.Counters.StreamsRefused, _host.Counters.StreamsReset));

        // A connect that completes after all is closed at once.
        Stream.OnConnected(_ours.SafeHandle);
        Assert.Equal(0, _peer.Receive(new byte[1]));
    }

    // ------------------------------------------------------------------ guest → host

    [Fact]
    public void Guest_data_goes_straight_to_the_socket_and_the_tx_buffer_holds_no_storage()
    {
        Establish();
        var data = Pattern(3 * 20000, 1);
        for (var i = 0; i < 3; i++)
            GuestData(data.AsSpan(i * 20000, 20000));
        Tx();

        Assert.Equal(data, Receive(data.Length));
        Assert.False(Stream.HoldsTxStorage);
        Assert.Equal(0u, Stream.TxBuffered);
        Assert.Equal((uint)data.Length, Stream.CreditSnapshot.FwdCnt);
        // 60000 of 65536 forwarded: the guest is told before it runs out.
        var update = Assert.Single(Rx());
        Assert.Equal(VsockOp.CreditUpdate, update.Op);
        Assert.Equal((uint)data.Length, update.Header.FwdCnt);
    }

    [Fact]
    public void A_full_socket_keeps_the_rest_in_the_tx_buffer_in_order_until_it_is_writable()
    {
        ShrinkSocketBuffers();
        Establish();
        var data = Pattern(60000, 2);
        for (var i = 0; i < 10; i++)
            GuestData(data.AsSpan(i * 4000, 4000));
        Tx();
        Assert.True(Stream.HoldsTxStorage);
        Assert.True(Stream.TxBuffered > 0);
        Assert.False(Stream.Has(StreamStatus.HostWritable));

        // More guest data while bytes wait: it queues behind them.
        for (var i = 10; i < 15; i++)
            GuestData(data.AsSpan(i * 4000, 4000));
        Tx();

        var received = new List<byte>();
        while (received.Count < data.Length)
        {
            var buffer = new byte[8192];
            var n = _peer.Receive(buffer);
            Assert.True(n > 0);
            received.AddRange(buffer.AsSpan(0, n).ToArray());
            Stream.OnSocketReady(EpollEvents.Out);
        }
        Assert.Equal(data, received.ToArray());
        Assert.Equal(0u, Stream.TxBuffered);
        Assert.Equal(60000u, Stream.CreditSnapshot.FwdCnt);
        Assert.Contains(Rx(), p => p.Op == VsockOp.CreditUpdate && p.Header.FwdCnt == 60000);
        Assert.Equal(1, _host.Counters.HostSocketFull); // one stall: bytes queued behind it do not count again
    }

    [Fact]
    public void A_payload_too_fragmented_to_lend_is_copied_behind_what_was_gathered_and_written_at_once()
    {
        Establish();
        GuestData("first"u8);
        var fragmented = Pattern(StreamIo.MaxVectorSegments + 36, 3);
        _rig.SendTxFragmented(DeviceRig.FromGuest(Key, VsockOp.Rw), fragmented, 1);
        GuestData("last"u8);
        Tx();

        // No readiness event comes for a socket that never filled up: the bytes must be out already.
        Assert.Equal([.. "first"u8, .. fragmented, .. "last"u8], Receive(5 + fragmented.Length + 4));
        Assert.Equal(0u, Stream.TxBuffered);
    }

    [Fact]
    public void A_guest_beyond_its_credit_is_reset_and_nothing_reaches_the_host()
    {
        Establish(txBufferSize: 4096);
        GuestData(new byte[5000]);
        Tx();

        Assert.Equal(VsockOp.Rst, Assert.Single(Rx()).Op);
        Assert.Equal([Stream], _host.Finished);
        Assert.Equal(0, _peer.Available);
        Assert.Contains(_rig.Log.Warnings, w => w.Contains("beyond its credit"));
        Assert.Equal((1, 1), (_host.Counters.StreamsOpened, _host.Counters.StreamsReset));
    }

    [Fact]
    public void Data_after_the_guest_s_shutdown_send_is_a_violation()
    {
        Establish();
        FromGuest(VsockOp.Shutdown, VsockShutdownFlags.Send);
        GuestData("late"u8);
        Tx();
        Assert.Equal(VsockOp.Rst, Assert.Single(Rx()).Op);
        Assert.Equal(0, _peer.Receive(new byte[16])); // the write side was shut before the violation
    }

    [Fact]
    public void A_credit_request_gets_one_credit_update()
    {
        Establish();
        for (var i = 0; i < 3; i++)
            FromGuest(VsockOp.CreditRequest);
        Tx();

        var update = Assert.Single(Rx());
        Assert.Equal(VsockOp.CreditUpdate, update.Op);
        Assert.Equal(TxBufferSize, update.Header.BufAlloc);
        Assert.Equal(0u, update.Header.FwdCnt);
        Assert.Empty(Rx());
    }

    [Fact]
    public void A_guest_shutdown_send_reaches_the_host_as_eof_after_the_buffered_data()
    {
        ShrinkSocketBuffers();
        Establish();
        var data = Pattern(40000, 4);
        for (var i = 0; i < 10; i++)
            GuestData(data.AsSpan(i * 4000, 4000));
        FromGuest(VsockOp.Shutdown, VsockShutdownFlags.Send);
        Tx();
        Assert.True(Stream.TxBuffered > 0);

        var received = new List<byte>();
        var buffer = new byte[8192];
        while (true)
        {
            var n = _peer.Receive(buffer);
            if (n == 0)
                break;
            received.AddRange(buffer.AsSpan(0, n).ToArray());
            Stream.OnSocketReady(EpollEvents.Out);
        }
        Assert.Equal(data, received.ToArray());

        // Half-close: the host can still answer.
        _peer.Send("reply"u8);
        Stream.OnSocketReady(EpollEvents.In);
        Assert.Equal("reply"u8.ToArray(), Payloads(Rx()));
    }

    [Fact]
    public void A_guest_shutdown_of_both_directions_flushes_then_resets()
    {
        Establish();
        GuestData("bye"u8);
        FromGuest(VsockOp.Shutdown, VsockShutdownFlags.Both);
        Tx();
        Assert.Equal("bye"u8.ToArray(), Receive(3));
        Assert.Equal(VsockOp.Rst, Assert.Single(Rx()).Op);
        Assert.Equal([Stream], _host.Finished);
        Assert.Equal(0, _host.Counters.StreamsReset); // the RST that answers the guest's close is the normal end
    }

    [Fact]
    public void A_guest_rst_finishes_the_stream_without_a_reply()
    {
        Establish();
        FromGuest(VsockOp.Rst);
        Tx();
        Assert.Equal([Stream], _host.Finished);
        Assert.True(Stream.Has(StreamStatus.Finished));
        Assert.False(Stream.HasRxWork);
        Assert.Empty(Rx());
    }

    // ------------------------------------------------------------------ host → guest

    [Fact]
    public void Host_data_is_read_within_the_guest_s_credit_and_resumes_on_its_credit_update()
    {
        Establish(guestBufAlloc: 5000);
        var data = Pattern(12000, 5);
        _peer.Send(data);
        Stream.OnSocketReady(EpollEvents.In);

        var first = Rx();
        Assert.Equal(data.AsSpan(0, 5000).ToArray(), Payloads(first));
        Assert.Equal(VsockOp.CreditRequest, first[^1].Op);
        Assert.False(Stream.HasRxWork); // asked once; the guest's next packet tells
        Assert.Equal(7000, _ours.Available); // the rest waits in the socket, not in the daemon
        Assert.Equal(1, _host.Counters.CreditStallsTowardGuest);

        FromGuest(VsockOp.CreditUpdate, bufAlloc: 5000, fwdCnt: 5000);
        Tx();
        Assert.True(Stream.HasRxWork);
        Assert.Equal(data.AsSpan(5000, 5000).ToArray(), Payloads(Rx()));
        Assert.Equal(2000, _ours.Available);
    }

    [Fact]
    public void The_guest_is_asked_for_credit_once_three_quarters_of_its_window_is_used_not_when_it_is_empty()
    {
        // A Linux guest returns credit only after consuming three quarters of its buffer: waiting for an empty
        // window would stop the stream for a round trip every window. One request per window.
        Establish(guestBufAlloc: 16384);
        _peer.Send(Pattern(13000, 8));
        Stream.OnSocketReady(EpollEvents.In);

        var packets = Rx();
        var request = packets.FindIndex(p => p.Op == VsockOp.CreditRequest);
        Assert.True(request > 0, "no CREDIT_REQUEST");
        var sentBefore = packets.Take(request).Where(p => p.Op == VsockOp.Rw).Sum(p => (long)p.Header.Len);
        Assert.True(sentBefore > 16384 * 3 / 4, $"asked after {sentBefore} bytes: too early");
        Assert.Equal(1, packets.Count(p => p.Op == VsockOp.CreditRequest));
        Assert.Equal(13000, Payloads(packets).Length); // the window still had room: nothing waited for the answer
        Assert.True(Stream.Has(StreamStatus.CreditRequested));

        FromGuest(VsockOp.CreditUpdate, bufAlloc: 16384, fwdCnt: 13000); // the guest's answer re-opens asking
        Tx();
        Assert.False(Stream.Has(StreamStatus.CreditRequested));
    }

    [Fact]
    public void Host_eof_sends_shutdown_send_once_after_the_data_and_the_guest_can_still_write()
    {
        Establish();
        _peer.Send("bye"u8);
        _peer.Shutdown(SocketShutdown.Send);
        Stream.OnSocketReady(EpollEvents.In | EpollEvents.RdHup);

        var packets = Rx();
        Assert.Equal([VsockOp.Rw, VsockOp.Shutdown], packets.Select(p => p.Op));
        Assert.Equal("bye"u8.ToArray(), packets[0].Payload);
        Assert.Equal(VsockShutdownFlags.Send, packets[1].Header.Flags);
        Assert.NotNull(Stream.ShutdownSentAt);

        Stream.OnSocketReady(EpollEvents.In | EpollEvents.RdHup);
        Assert.False(Stream.HasRxWork);
        Assert.Empty(Rx());

        GuestData("still here"u8);
        Tx();
        Assert.Equal("still here"u8.ToArray(), Receive(10));
    }

    [Fact]
    public void Without_rx_buffers_host_data_stays_in_the_socket_and_comes_once_buffers_do()
    {
        Establish();
        // The guest's buffers are used up (by other streams, say).
        Assert.True(_rig.Backend.TryBeginRx(out var turn));
        while (turn.TryWriteControl(DeviceRig.FromGuest(Key, VsockOp.CreditUpdate)))
        {
        }
        turn.Complete();
        _rig.TakeRx();
        var data = Pattern(10000, 6);
        _peer.Send(data);
        Stream.OnSocketReady(EpollEvents.In);

        Assert.Equal(RxFill.OutOfBuffers, _rig.RunRx(Stream));
        Assert.Empty(_rig.TakeRx());
        Assert.Equal(data.Length, _ours.Available);
        Assert.True(Stream.HasRxWork);

        _rig.PostRxBuffers(4);
        Assert.Equal(RxFill.Idle, _rig.RunRx(Stream));
        Assert.Equal(data, Payloads(_rig.TakeRx()));
    }

    [Fact]
    public void One_turn_reads_at_most_the_quantum_and_says_more()
    {
        Establish();
        var data = Pattern(60_000, 7);
        _peer.Send(data);
        Stream.OnSocketReady(EpollEvents.In);

        Assert.True(_rig.Backend.TryBeginRx(out var turn));
        var fill = Stream.FillRx(ref turn, 8192);
        turn.Complete();
        Assert.Equal(RxFill.More, fill);
        var first = Payloads(_rig.TakeRx());
        Assert.Equal(8192, first.Length);

        var rest = Payloads(Rx());
        Assert.Equal(data, first.Concat(rest).ToArray());
    }

    [Fact]
    public void A_reset_sends_one_rst_and_finishes_and_dispose_closes_the_socket()
    {
        Establish();
        Stream.Reset();
        Stream.Reset();
        var packets = Rx();
        Assert.Equal(VsockOp.Rst, Assert.Single(packets).Op);
        Assert.Equal([Stream], _host.Finished);
        Assert.Empty(Rx());

        Stream.Dispose();
        Assert.Equal(0, _peer.Receive(new byte[1]));
    }

    [Fact]
    public void Dispose_returns_the_tx_buffer_and_closes_the_socket_whatever_the_state()
    {
        ShrinkSocketBuffers();
        Establish();
        for (var i = 0; i < 10; i++)
            GuestData(new byte[4000]);
        Tx();
        Assert.True(Stream.HoldsTxStorage);

        Stream.Dispose();
        Assert.False(Stream.HoldsTxStorage);
        Assert.True(Stream.Has(StreamStatus.Finished));
        Assert.Empty(_host.Finished); // the owner stopped: the device learns from that, not from the stream
    }
}
