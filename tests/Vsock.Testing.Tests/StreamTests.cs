using Vsock.Testing.Packets;

namespace Vsock.Testing.Tests;

/// <summary>The guest's af_vsock layer against a scripted fake device (no daemon).</summary>
public sealed class StreamTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);
    private const ulong Cid = 7;

    private static VsockHeader FromHost(VsockOp op, uint srcPort, uint dstPort, uint len = 0, uint flags = 0, uint bufAlloc = 65536, uint fwdCnt = 0) =>
        new(2, Cid, srcPort, dstPort, len, VsockWire.TypeStream, (ushort)op, flags, bufAlloc, fwdCnt);

    private static async Task<VsockHeader> WaitForTx(FakeBackend backend, Func<VsockHeader, bool> match)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (DateTime.UtcNow < deadline)
        {
            var hit = backend.TxSnapshot().Select(p => p.Header).FirstOrDefault(match);
            if (match(hit))
                return hit;
            await Task.Delay(5);
        }
        throw new TimeoutException("packet not sent");
    }

    [Fact]
    public async Task Connect_sends_request_from_an_ephemeral_port_and_completes_on_response()
    {
        using var backend = new FakeBackend
        {
            OnTx = (h, _) => h.Operation == VsockOp.Request
                ? [(new VsockHeader(2, Cid, h.DstPort, h.SrcPort, 0, 1, (ushort)VsockOp.Response, 0, 1000, 0), [])]
                : [],
        };
        await using var guest = SyntheticGuest.Connect(backend.SocketPath);
        var stream = await guest.ConnectAsync(2, 5000, Timeout);

        Assert.Equal(49152u, stream.LocalPort);
        Assert.Equal(5000u, stream.PeerPort);
        Assert.Equal(1000, stream.PeerCredit);
        var request = backend.TxSnapshot()[0].Header;
        Assert.Equal(new VsockHeader(Cid, 2, 49152, 5000, 0, 1, (ushort)VsockOp.Request, 0, 256 * 1024, 0), request);
        var second = await guest.ConnectAsync(2, 5000, Timeout);
        Assert.Equal(49153u, second.LocalPort);
        Assert.Empty(guest.Violations);
    }

    [Fact]
    public async Task Connect_throws_refused_on_rst_and_times_out_without_answer()
    {
        using var backend = new FakeBackend
        {
            OnTx = (h, _) => h.DstPort == 1
                ? [(new VsockHeader(2, Cid, h.DstPort, h.SrcPort, 0, 1, (ushort)VsockOp.Rst, 0, 0, 0), [])]
                : [],
        };
        await using var guest = SyntheticGuest.Connect(backend.SocketPath);
        var refused = await Assert.ThrowsAsync<GuestConnectionRefusedException>(() => guest.ConnectAsync(2, 1, Timeout));
        Assert.Equal(1u, refused.Port);
        await Assert.ThrowsAsync<TimeoutException>(() => guest.ConnectAsync(2, 2, TimeSpan.FromMilliseconds(100)));
    }

    [Fact]
    public async Task Writes_respect_peer_credit_split_packets_and_resume_on_credit_update()
    {
        using var backend = new FakeBackend();
        await using var guest = SyntheticGuest.Connect(backend.SocketPath, new SyntheticGuestOptions { MaxPacketPayload = 300 });
        using var listener = guest.Listen(700);
        backend.Inject(FromHost(VsockOp.Request, 9, 700, bufAlloc: 1000), []);
        var stream = await listener.AcceptAsync().WaitAsync(Timeout);
        var response = await WaitForTx(backend, h => h.Operation == VsockOp.Response);
        Assert.Equal(new VsockHeader(Cid, 2, 700, 9, 0, 1, (ushort)VsockOp.Response, 0, 256 * 1024, 0), response);

        var data = Enumerable.Range(0, 1500).Select(i => (byte)i).ToArray();
        var write = stream.WriteAsync(data).AsTask();
        await WaitUntil(() => stream.BytesSent == 1000);
        await Task.Delay(50);
        Assert.False(write.IsCompleted); // blocked on credit: 1000 bytes in flight, buf_alloc 1000
        Assert.Equal(0, stream.PeerCredit);

        backend.Inject(FromHost(VsockOp.CreditUpdate, 9, 700, bufAlloc: 1000, fwdCnt: 1000), []);
        await write.WaitAsync(Timeout);
        await guest.WaitForTxDrainedAsync(Timeout);

        var rw = backend.TxSnapshot().Where(p => p.Header.Operation == VsockOp.Rw).ToList();
        Assert.Equal([300, 300, 300, 100, 300, 200], rw.Select(p => (int)p.Header.Len));
        Assert.Equal(data, rw.SelectMany(p => p.Payload).ToArray());
        Assert.All(rw, p => Assert.Equal(2, p.Descriptors)); // header descriptor + payload descriptor (Linux 6.1)
    }

    [Fact]
    public async Task Reads_count_fwd_cnt_and_send_credit_update_below_64k_free()
    {
        using var backend = new FakeBackend();
        await using var guest = SyntheticGuest.Connect(backend.SocketPath);
        using var listener = guest.Listen(700);
        backend.Inject(FromHost(VsockOp.Request, 9, 700), []);
        var stream = await listener.AcceptAsync().WaitAsync(Timeout);

        // 200 KiB in 4000-byte packets: free space as last advertised (256 KiB - consumed) drops below 64 KiB at 192 KiB.
        var chunk = new byte[4000];
        for (var i = 0; i < 51; i++)
            backend.Inject(FromHost(VsockOp.Rw, 9, 700, len: 4000), chunk);
        var buffer = new byte[4000];
        var total = 0;
        while (total < 51 * 4000)
            total += await stream.ReadAsync(buffer).AsTask().WaitAsync(Timeout);

        var update = await WaitForTx(backend, h => h.Operation == VsockOp.CreditUpdate);
        Assert.InRange(update.FwdCnt, 192u * 1024 + 1, 196u * 1024);
        Assert.Equal(256u * 1024, update.BufAlloc);
        Assert.Single(backend.TxSnapshot(), p => p.Header.Operation == VsockOp.CreditUpdate);
        Assert.Equal(1, guest.Statistics.CreditUpdatesSent);
    }

    [Fact]
    public async Task Credit_request_is_answered_and_a_request_to_a_closed_port_gets_rst()
    {
        using var backend = new FakeBackend();
        await using var guest = SyntheticGuest.Connect(backend.SocketPath);
        using var listener = guest.Listen(700);
        backend.Inject(FromHost(VsockOp.Request, 9, 700), []);
        await listener.AcceptAsync().WaitAsync(Timeout);

        backend.Inject(FromHost(VsockOp.CreditRequest, 9, 700), []);
        var update = await WaitForTx(backend, h => h.Operation == VsockOp.CreditUpdate);
        Assert.Equal(700u, update.SrcPort);

        backend.Inject(FromHost(VsockOp.Request, 10, 701), []);
        var rst = await WaitForTx(backend, h => h.Operation == VsockOp.Rst);
        Assert.Equal(new VsockHeader(Cid, 2, 701, 10, 0, 1, (ushort)VsockOp.Rst, 0, 0, 0), rst);
    }

    [Fact]
    public async Task Half_close_eof_and_close_handshake_follow_linux()
    {
        using var backend = new FakeBackend();
        await using var guest = SyntheticGuest.Connect(backend.SocketPath, new SyntheticGuestOptions { CloseTimeout = TimeSpan.FromMilliseconds(300) });
        using var listener = guest.Listen(700);
        backend.Inject(FromHost(VsockOp.Request, 9, 700), []);
        backend.Inject(FromHost(VsockOp.Request, 10, 700), []);
        backend.Inject(FromHost(VsockOp.Request, 11, 700), []);
        var a = await listener.AcceptAsync().WaitAsync(Timeout);
        var b = await listener.AcceptAsync().WaitAsync(Timeout);
        var c = await listener.AcceptAsync().WaitAsync(Timeout);

        // Peer SHUTDOWN(SEND): buffered data, then EOF; we can still write.
        backend.Inject(FromHost(VsockOp.Rw, 9, 700, len: 3), [1, 2, 3]);
        backend.Inject(FromHost(VsockOp.Shutdown, 9, 700, flags: VsockWire.ShutdownSend), []);
        var buffer = new byte[10];
        Assert.Equal(3, await a.ReadAsync(buffer).AsTask().WaitAsync(Timeout));
        Assert.Equal(0, await a.ReadAsync(buffer).AsTask().WaitAsync(Timeout));
        await a.WriteAsync(new byte[] { 9 }).AsTask().WaitAsync(Timeout);

        // Our SHUT_WR, then close: SHUTDOWN(SEND), SHUTDOWN(RCV|SEND), the peer's RST ends it.
        a.ShutdownWrite();
        await Assert.ThrowsAsync<GuestStreamClosedException>(() => a.WriteAsync(new byte[] { 1 }).AsTask());
        var closing = a.CloseAsync().AsTask();
        await WaitForTx(backend, h => h.Operation == VsockOp.Shutdown && h.SrcPort == 700 && h.DstPort == 9 && h.Flags == VsockWire.ShutdownBoth);
        backend.Inject(FromHost(VsockOp.Rst, 9, 700), []);
        await closing.WaitAsync(Timeout);
        Assert.Equal(CloseOutcome.ClosedByPeerReset, a.CloseOutcome);
        Assert.Single(backend.TxSnapshot(), p => p.Header.Operation == VsockOp.Shutdown && p.Header.DstPort == 9 && p.Header.Flags == VsockWire.ShutdownSend);

        // Peer SHUTDOWN(RCV|SEND) with nothing buffered: we answer RST at once (Linux).
        backend.Inject(FromHost(VsockOp.Shutdown, 10, 700, flags: VsockWire.ShutdownBoth), []);
        await WaitForTx(backend, h => h.Operation == VsockOp.Rst && h.DstPort == 10);
        Assert.Equal(0, await b.ReadAsync(buffer).AsTask().WaitAsync(Timeout));
        Assert.Equal(CloseOutcome.ClosedWithOwnReset, b.CloseOutcome);

        // No RST from the peer: close gives up after the close timeout and sends its own.
        await c.CloseAsync();
        Assert.Equal(CloseOutcome.TimedOut, c.CloseOutcome);
        await WaitForTx(backend, h => h.Operation == VsockOp.Rst && h.DstPort == 11);

        // A packet for the closed stream is answered with RST; an RST for it is not.
        backend.Inject(FromHost(VsockOp.Rw, 11, 700, len: 1), [0]);
        await WaitUntil(() => backend.TxSnapshot().Count(p => p.Header.Operation == VsockOp.Rst && p.Header.DstPort == 11) == 2);
        Assert.Empty(guest.Violations);
    }

    [Fact]
    public async Task Data_beyond_the_credit_we_gave_is_dropped_and_reported()
    {
        using var backend = new FakeBackend();
        await using var guest = SyntheticGuest.Connect(backend.SocketPath, new SyntheticGuestOptions { BufAlloc = 4096 });
        using var listener = guest.Listen(700);
        backend.Inject(FromHost(VsockOp.Request, 9, 700), []);
        var stream = await listener.AcceptAsync().WaitAsync(Timeout);
        backend.Inject(FromHost(VsockOp.Rw, 9, 700, len: 3000), new byte[3000]);
        backend.Inject(FromHost(VsockOp.Rw, 9, 700, len: 3000), new byte[3000]);
        await WaitUntil(() => guest.Statistics.CreditViolations == 1);
        Assert.Equal(3000, stream.BytesBuffered);
        Assert.Contains(guest.Violations, v => v.Contains("exceeds our credit"));
    }

    [Theory]
    [InlineData(RxLayout.SingleDescriptor, TxLayout.SingleDescriptor)]
    [InlineData(RxLayout.TwoDescriptors, TxLayout.SplitPayload)]
    [InlineData(RxLayout.Indirect, TxLayout.HeaderThenPayload)]
    public async Task Every_buffer_layout_carries_the_same_bytes(RxLayout rx, TxLayout tx)
    {
        using var backend = new FakeBackend();
        var options = new SyntheticGuestOptions { RxLayout = rx, TxLayout = tx, TxFragmentSize = 1000, RxBufferSize = 2048 };
        await using var guest = SyntheticGuest.Connect(backend.SocketPath, options);
        using var listener = guest.Listen(700);
        backend.Inject(FromHost(VsockOp.Request, 9, 700), []);
        var stream = await listener.AcceptAsync().WaitAsync(Timeout);
        var payload = Enumerable.Range(0, 2000).Select(i => (byte)(i * 7)).ToArray();
        backend.Inject(FromHost(VsockOp.Rw, 9, 700, len: 2000), payload);
        var buffer = new byte[4096];
        var read = 0;
        while (read < 2000)
            read += await stream.ReadAsync(buffer.AsMemory(read)).AsTask().WaitAsync(Timeout);
        Assert.Equal(payload, buffer[..2000]);

        await stream.WriteAsync(payload).AsTask().WaitAsync(Timeout);
        var sent = await WaitForTxPacket(backend, p => p.Header.Operation == VsockOp.Rw);
        Assert.Equal(payload, sent.Payload);
        var expectedTx = tx switch { TxLayout.SingleDescriptor => 1, TxLayout.HeaderThenPayload => 2, _ => 3 };
        Assert.Equal(expectedTx, sent.Descriptors);
        var chain = backend.RxChains[^1];
        Assert.Equal(rx == RxLayout.SingleDescriptor ? 1 : 2, chain.Descriptors);
        Assert.Equal(rx == RxLayout.Indirect, chain.Indirect);
        Assert.Equal(rx == RxLayout.SingleDescriptor ? 2048u : 44u + 2048, chain.TotalLength);
        Assert.Empty(guest.Violations);
    }

    [Fact]
    public async Task Raw_chains_are_written_verbatim_and_counted_when_returned()
    {
        using var backend = new FakeBackend();
        await using var guest = SyntheticGuest.Connect(backend.SocketPath);
        var scratch = guest.AllocateScratch(100);
        var header = guest.MakeHeader(2, 1, 2, VsockOp.Rw, length: 5);
        guest.WriteMemory(scratch, header.ToBytes());
        guest.WriteMemory(scratch + 44, [1, 2, 3, 4, 5]);
        guest.SendRawTx(RawDescriptor.Readable(scratch, 44, next: 1), RawDescriptor.Readable(scratch + 44, 5));
        await guest.WaitForTxDrainedAsync(Timeout);
        Assert.Equal(1, guest.UsedTxCount);
        var packet = backend.TxSnapshot().Single();
        Assert.Equal(header, packet.Header);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5 }, packet.Payload);

        guest.SendPacket(header with { SrcCid = 99, Len = 1000 }, [7]);
        await guest.WaitForTxDrainedAsync(Timeout);
        Assert.Equal(99ul, backend.TxSnapshot()[1].Header.SrcCid);
        Assert.Equal(2, guest.UsedTxCount);
        Assert.Throws<ArgumentException>(() => guest.SendRawTx(RawDescriptor.Readable(scratch, 44, next: 5)));
    }

    private static async Task<(VsockHeader Header, byte[] Payload, int Descriptors)> WaitForTxPacket(FakeBackend backend, Func<(VsockHeader Header, byte[] Payload, int Descriptors), bool> match)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (DateTime.UtcNow < deadline)
        {
            foreach (var p in backend.TxSnapshot())
            {
                if (match(p))
                    return p;
            }
            await Task.Delay(5);
        }
        throw new TimeoutException("packet not sent");
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("condition not reached");
            await Task.Delay(5);
        }
    }
}
