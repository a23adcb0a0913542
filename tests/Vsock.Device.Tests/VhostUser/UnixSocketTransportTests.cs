using System.Runtime.InteropServices;
using Vsock.Device.Interop;
using Vsock.Device.VhostUser;
using P = Vsock.Device.VhostUser.VhostUserProtocolFeatures;
using R = Vsock.Device.VhostUser.VhostUserRequest;

namespace Vsock.Device.Tests.VhostUser;

/// <summary>
/// Codec, reader and session over a real socketpair with real fds: the "front-end" end plays QEMU,
/// the other end runs the backend loop with the production mmap mapper.
/// </summary>
public sealed unsafe class UnixSocketTransportTests : IDisposable
{
    private const ulong RamSize = 0x20_0000;

    private readonly UnixSocket _frontend;
    private readonly UnixSocket _backendSocket;
    private readonly VhostUserReader _reader;
    private readonly UnixSocketTransport _transport;
    private readonly RecordingBackend _backend = new();
    private readonly VhostUserSession _session;
    private readonly byte[] _reply = new byte[VhostUserCodec.MaxMessageSize];

    public UnixSocketTransportTests()
    {
        (_frontend, _backendSocket) = UnixSocket.Pair();
        _transport = new UnixSocketTransport(_backendSocket);
        _reader = new VhostUserReader(_transport);
        _session = new VhostUserSession(_backend, MmapMemoryMapper.Instance);
    }

    public void Dispose()
    {
        _session.Dispose();
        _reader.Dispose();
        _frontend.Dispose();
        _transport.Dispose();
    }

    /// <summary>The front-end sends a request; the backend loop handles one message; the front-end reads the reply, if any.</summary>
    private byte[]? Exchange(R request, byte[]? payload = null, bool needReply = false, params int[] fds)
    {
        _frontend.Send(Frontend.Encode(request, payload, needReply), fds);
        using (var message = _reader.ReadMessage())
        {
            Assert.NotNull(message);
            var n = _session.Handle(message, _reply);
            if (n == 0)
                return null;
            Assert.Equal(n, _transport.Send(_reply.AsSpan(0, n))); // a reply fits in an empty socket buffer
        }
        var header = new byte[VhostUserCodec.HeaderSize];
        ReadExactly(header);
        var size = MemoryMarshal.Read<VhostUserHeader>(header).Size;
        var reply = new byte[VhostUserCodec.HeaderSize + size];
        header.CopyTo(reply, 0);
        ReadExactly(reply.AsSpan(VhostUserCodec.HeaderSize));
        return reply;
    }

    private void ReadExactly(Span<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            var n = _frontend.Receive(buffer, null);
            Assert.True(n > 0, "backend closed the connection");
            buffer = buffer[n..];
        }
    }

    private static string[] FdTargets() =>
        Directory.GetFiles("/proc/self/fd").Select(f => new FileInfo(f).LinkTarget ?? "").ToArray();

    [Fact]
    public void Memory_table_sent_with_a_real_memfd_is_shared_both_ways()
    {
        var name = $"vhost-user-test-{Guid.NewGuid():N}";
        using var memfd = MemFd.Create(name, (long)RamSize);
        // The front-end's own mapping of guest RAM: its address is the "userspace_addr" QEMU reports.
        using var vmmView = MmapMemoryMapper.Instance.Map(memfd, 0, 0, RamSize, 0x1000);
        var vmm = (byte*)vmmView.HostAddress;
        var userAddress = (ulong)vmmView.HostAddress;

        Assert.Null(Exchange(R.SetOwner));
        Assert.Equal(0UL, Frontend.ReplyU64(Exchange(R.SetProtocolFeatures, Frontend.U64(P.Bit(P.ReplyAck) | P.Bit(P.Mq)), needReply: true)));
        Assert.Equal(RecordingBackend.VsockFeatures, Frontend.ReplyU64(Exchange(R.GetFeatures)));
        Assert.Null(Exchange(R.SetFeatures, Frontend.U64(RecordingBackend.VsockFeatures)));

        var ack = Exchange(R.SetMemTable, Frontend.MemTable(Frontend.Region(0, RamSize, userAddress)), needReply: true, (int)memfd.DangerousGetHandle());
        Assert.Equal(0UL, Frontend.ReplyU64(ack));

        // The backend closed its copy of the fd once mapped: only ours is left.
        Assert.Single(FdTargets(), t => t.Contains(name));

        var memory = _session.Memory;
        Assert.Same(memory, _backend.Memory);
        vmm[0x1234] = 0xAB;
        Assert.Equal(0xAB, memory.GetSpan(0x1234, 1)[0]);
        memory.WriteUInt32(0x8000, 0xfeedf00d);
        Assert.Equal(0xfeedf00du, *(uint*)(vmm + 0x8000));

        // Ring addresses in the front-end's address space translate to guest physical ones.
        Assert.Null(Exchange(R.SetVringNum, Frontend.State(1, 128)));
        Assert.Null(Exchange(R.SetVringAddr, Frontend.Addr(1, userAddress + 0x10000, userAddress + 0x11000, userAddress + 0x10800)));
        using var kick = EventFd.Create();
        Assert.Null(Exchange(R.SetVringKick, Frontend.U64(1), fds: kick.Fd));
        Assert.Null(Exchange(R.SetVringEnable, Frontend.State(1, 1)));
        var ring = _backend.Running[1];
        Assert.Equal((0x10000UL, 0x10800UL, 0x11000UL), (ring.DescTableGpa, ring.AvailRingGpa, ring.UsedRingGpa));
        // The backend got its own copy of the front-end's eventfd: a kick on one is read on the other.
        Assert.NotNull(ring.KickFd);
        Assert.NotEqual(kick.Fd, (int)ring.KickFd.DangerousGetHandle());
        kick.Signal();
        Assert.True(EventFd.FromHandle(ring.KickFd).TryRead(out var kicks));
        Assert.Equal(1UL, kicks);

        var stop = Exchange(R.GetVringBase, Frontend.State(1, 0))!;
        Assert.Equal(Frontend.State(1, 7), stop[VhostUserCodec.HeaderSize..]);

        // The front-end hangs up between messages: a clean end.
        _frontend.Shutdown();
        Assert.Null(_reader.ReadMessage());
        _session.Dispose();
        Assert.Single(FdTargets(), t => t.Contains(name));
    }

    [Fact]
    public void Fds_sent_with_the_header_and_a_payload_sent_later_make_one_message()
    {
        var bytes = Frontend.Encode(R.SetVringCall, Frontend.U64(0));
        using var call = EventFd.Create();
        _frontend.Send(bytes.AsSpan(0, 5), [call.Fd]);
        _frontend.Send(bytes.AsSpan(5));
        using var message = _reader.ReadMessage();
        Assert.NotNull(message);
        Assert.Equal(R.SetVringCall, message.Request);
        Assert.Single(message.Fds);
        Assert.Equal(0, _session.Handle(message, _reply));
        Assert.NotNull(_backend.CallFds[0]);
    }

    [Fact]
    public void Connection_closed_inside_a_message_is_a_truncated_message()
    {
        _frontend.Send(Frontend.Encode(R.SetVringNum, Frontend.State(0, 128)).AsSpan(0, 15));
        _frontend.Shutdown();
        var e = Assert.Throws<VhostUserProtocolException>(() => _reader.ReadMessage());
        Assert.Equal(VhostUserError.TruncatedMessage, e.Error);
    }

    [Fact]
    public void A_request_sent_in_pieces_is_read_resumably_and_no_read_waits()
    {
        var bytes = Frontend.Encode(R.SetVringCall, Frontend.U64(1));
        using var call = EventFd.Create();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(VhostUserReadStatus.NeedMore, _reader.TryRead(out _)); // an empty socket
        _frontend.Send(bytes.AsSpan(0, 7), [call.Fd]);
        Assert.Equal(VhostUserReadStatus.NeedMore, _reader.TryRead(out _));
        _frontend.Send(bytes.AsSpan(7, 6));
        Assert.Equal(VhostUserReadStatus.NeedMore, _reader.TryRead(out _));
        Assert.True(clock.ElapsedMilliseconds < 500, $"reads waited {clock.ElapsedMilliseconds} ms");
        _frontend.Send(bytes.AsSpan(13));
        Assert.Equal(VhostUserReadStatus.Message, _reader.TryRead(out var message));
        using (message)
        {
            Assert.Equal(R.SetVringCall, message!.Request);
            Assert.Single(message.Fds);
        }
    }

    [Fact]
    public void The_transport_makes_the_socket_non_blocking_and_sends_only_what_fits()
    {
        var flags = File.ReadAllText($"/proc/self/fdinfo/{_backendSocket.Fd}").Split('\n').Single(l => l.StartsWith("flags:"));
        Assert.NotEqual(0, Convert.ToInt32(flags["flags:".Length..].Trim(), 8) & 0x800); // O_NONBLOCK (04000)
        var big = new byte[4 << 20];
        var sent = _transport.Send(big);
        Assert.InRange(sent, 1, big.Length - 1);
        Assert.Equal(0, _transport.Send(big));
    }

    [Fact]
    public void A_vanished_vmm_is_an_IOException_on_send_and_end_of_stream_on_receive()
    {
        _frontend.Dispose();
        Assert.ThrowsAny<IOException>(() => _transport.Send(new byte[12]));
        Assert.Equal(VhostUserReadStatus.EndOfStream, _reader.TryRead(out _));
    }
}
