using System.Text;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Interop;

namespace Vsock.Device.Tests.Interop;

public sealed unsafe class UnixSocketTests : IDisposable
{
    private static readonly ulong Page = (ulong)Environment.SystemPageSize;
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("vsock-interop-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void A_memfd_passed_over_SCM_RIGHTS_is_shared_memory_both_ways()
    {
        var (sender, receiver) = UnixSocket.Pair();
        using (sender)
        using (receiver)
        {
            using var memfd = MemFd.Create("passed", (long)Page);
            using var senderView = MmapMemoryMapper.Instance.Map(memfd, 0, 0, Page, 0);
            ((byte*)senderView.HostAddress)[100] = 0x42;

            sender.Send("hello"u8, [(int)memfd.DangerousGetHandle()]);
            var fds = new List<SafeFileHandle>();
            var buffer = new byte[16];
            Assert.Equal(5, receiver.Receive(buffer, fds));
            Assert.Equal("hello", Encoding.ASCII.GetString(buffer, 0, 5));
            using var received = Assert.Single(fds);
            Assert.NotEqual(memfd.DangerousGetHandle(), received.DangerousGetHandle());

            using var receiverView = MmapMemoryMapper.Instance.Map(received, 0, 0, Page, 0);
            Assert.Equal(0x42, ((byte*)receiverView.HostAddress)[100]);
            ((byte*)receiverView.HostAddress)[200] = 0x24;
            Assert.Equal(0x24, ((byte*)senderView.HostAddress)[200]);
        }
    }

    [Fact]
    public void Several_fds_arrive_in_order_in_one_message()
    {
        var (a, b) = UnixSocket.Pair();
        using (a)
        using (b)
        {
            var events = Enumerable.Range(0, 5).Select(_ => EventFd.Create()).ToArray();
            try
            {
                a.Send(new byte[12], events.Select(e => e.Fd).ToArray());
                var fds = new List<SafeFileHandle>();
                Assert.Equal(12, b.Receive(new byte[64], fds));
                Assert.Equal(5, fds.Count);
                for (var i = 0; i < fds.Count; i++)
                {
                    using var received = EventFd.FromHandle(fds[i]);
                    received.Signal((ulong)i + 1);
                    Assert.True(events[i].TryRead(out var value));
                    Assert.Equal((ulong)i + 1, value);
                }
            }
            finally
            {
                foreach (var e in events)
                    e.Dispose();
            }
        }
    }

    [Fact]
    public void A_read_stops_right_after_the_bytes_that_carried_fds()
    {
        // Linux merges plain bytes queued before an fd-carrying send into the same read, then stops
        // at the end of that send: fds always arrive with the last bytes of their own message.
        var (a, b) = UnixSocket.Pair();
        using (a)
        using (b)
        using (var e = EventFd.Create())
        {
            a.Send("plain"u8);
            a.Send("withfd"u8, [e.Fd]);
            a.Send("after"u8);
            var fds = new List<SafeFileHandle>();
            var buffer = new byte[64];
            Assert.Equal(11, b.Receive(buffer, fds));
            Assert.Equal("plainwithfd", Encoding.ASCII.GetString(buffer, 0, 11));
            Assert.Single(fds).Dispose();
            fds.Clear();
            Assert.Equal(5, b.Receive(buffer, fds));
            Assert.Empty(fds);
        }
    }

    [Fact]
    public void Fds_come_with_the_first_read_that_touches_their_bytes()
    {
        // How a vhost-user reader gets a message's fds with its 12-byte header.
        var (a, b) = UnixSocket.Pair();
        using (a)
        using (b)
        using (var e = EventFd.Create())
        {
            a.Send(new byte[20], [e.Fd]);
            var fds = new List<SafeFileHandle>();
            Assert.Equal(12, b.Receive(new byte[12], fds));
            Assert.Single(fds).Dispose();
            fds.Clear();
            Assert.Equal(8, b.Receive(new byte[64], fds));
            Assert.Empty(fds);
        }
    }

    [Fact]
    public void Fds_arriving_when_none_are_wanted_are_closed()
    {
        var (a, b) = UnixSocket.Pair();
        var (probe, passed) = UnixSocket.Pair();
        using (a)
        using (b)
        using (probe)
        {
            using (passed)
                a.Send([1, 2, 3], [passed.Fd]);
            Assert.Equal(3, b.Receive(new byte[8], fds: null));
            AssertAllCopiesClosed(probe);
        }
    }

    [Fact]
    public void More_fds_than_fit_is_InvalidDataException_and_nothing_is_kept()
    {
        var (a, b) = UnixSocket.Pair();
        var (probe, passed) = UnixSocket.Pair();
        using (a)
        using (b)
        using (probe)
        {
            // Beneath the API's own limit: a hand-built 40-fd SCM_RIGHTS message.
            using (passed)
                SendRaw(a, Enumerable.Repeat(passed.Fd, 40).ToArray());
            var keep = new SafeFileHandle(IntPtr.Zero, ownsHandle: false);
            var fds = new List<SafeFileHandle> { keep };
            Assert.Throws<InvalidDataException>(() => b.Receive(new byte[8], fds));
            Assert.Same(keep, Assert.Single(fds)); // what was there stays; what arrived is gone
            AssertAllCopiesClosed(probe);
        }
    }

    [Fact]
    public void Send_rejects_too_many_fds_and_fds_without_bytes()
    {
        var (a, b) = UnixSocket.Pair();
        using (a)
        using (b)
        {
            Assert.Throws<ArgumentException>(() => a.Send([1], new int[ControlMessage.MaxFds + 1]));
            Assert.Throws<ArgumentException>(() => a.Send([], [0]));
            a.Send([]); // nothing to send: fine
        }
    }

    [Fact]
    public void Receive_returns_0_at_end_of_stream_and_minus_1_when_nothing_is_there()
    {
        var (a, b) = UnixSocket.Pair();
        using (b)
        {
            var buffer = new byte[8];
            Assert.Equal(-1, b.Receive(buffer, null, dontWait: true));

            b.SetNonBlocking(true);
            Assert.Equal(-1, b.Receive(buffer, null));
            b.SetNonBlocking(false);

            a.Dispose();
            Assert.Equal(0, b.Receive(buffer, null));
        }
    }

    [Fact]
    public void Shutdown_wakes_a_blocked_receiver()
    {
        var (a, b) = UnixSocket.Pair();
        using (a)
        using (b)
        {
            var reader = Task.Run(() => b.Receive(new byte[8], null));
            Thread.Sleep(20);
            b.Shutdown();
            Assert.True(reader.Wait(TimeSpan.FromSeconds(5)));
            Assert.Equal(0, reader.Result);
        }
    }

    [Fact]
    public void TrySend_takes_what_fits_and_never_waits_and_the_rest_goes_after_EPOLLOUT()
    {
        var (a, b) = UnixSocket.Pair();
        using (a)
        using (b)
        {
            var data = new byte[4 << 20]; // far more than a unix socket buffers
            Random.Shared.NextBytes(data);
            var first = a.TrySend(data); // a blocking socket: MSG_DONTWAIT still returns at once
            Assert.InRange(first, 1, data.Length - 1);
            Assert.Equal(0, a.TrySend(data.AsSpan(first)));
            Assert.Equal(0, Poll.WaitWritable(a.Handle, 0));
            a.SetNonBlocking(true);
            var e = Assert.Throws<LinuxException>(() => a.Send(data.AsSpan(first)));
            Assert.Equal(Errno.EAGAIN, e.Errno);

            var received = new byte[data.Length];
            var reader = Task.Run(() =>
            {
                var total = 0;
                while (total < received.Length)
                {
                    var n = b.Receive(received.AsSpan(total), null);
                    if (n <= 0)
                        break;
                    total += n;
                }
                return total;
            });
            var sent = first;
            while (sent < data.Length)
            {
                Assert.True(Poll.WaitWritable(a.Handle, 10_000) > 0, "the socket never became writable");
                sent += a.TrySend(data.AsSpan(sent));
            }
            Assert.True(reader.Wait(TimeSpan.FromSeconds(10)));
            Assert.Equal(data.Length, reader.Result);
            Assert.Equal(data, received);
        }
    }

    [Fact]
    public void TrySend_sends_fds_once_with_the_first_byte()
    {
        var (a, b) = UnixSocket.Pair();
        using (a)
        using (b)
        using (var e = EventFd.Create())
        {
            Assert.Equal(3, a.TrySend([1, 2, 3], [e.Fd]));
            var fds = new List<SafeFileHandle>();
            Assert.Equal(3, b.Receive(new byte[8], fds));
            Assert.Single(fds).Dispose();
        }
    }

    [Fact]
    public void Send_to_a_closed_peer_is_EPIPE_not_a_signal()
    {
        var (a, b) = UnixSocket.Pair();
        b.Dispose();
        using (a)
        {
            var e = Assert.Throws<LinuxException>(() => a.Send([1, 2, 3]));
            Assert.Equal(Errno.EPIPE, e.Errno);
        }
    }

    [Fact]
    public void Listen_Connect_Accept_on_a_path()
    {
        var path = Path.Combine(_dir.FullName, "vhost.sock");
        using var listener = UnixSocket.Listen(path);
        listener.SetNonBlocking(true);
        Assert.Null(listener.Accept());
        listener.SetNonBlocking(false);

        using var client = UnixSocket.Connect(path);
        using var server = listener.Accept(nonBlocking: true);
        Assert.NotNull(server);
        client.Send("ping"u8);
        Assert.Equal(1, Poll.WaitReadable(server.Handle, 1000));
        var buffer = new byte[4];
        Assert.Equal(4, server.Receive(buffer, null));
        Assert.Equal("ping"u8.ToArray(), buffer);
        Assert.Equal(-1, server.Receive(buffer, null)); // accepted non-blocking
    }

    [Fact]
    public void Listen_replaces_a_stale_socket_file()
    {
        var path = Path.Combine(_dir.FullName, "stale.sock");
        UnixSocket.Listen(path).Dispose(); // leaves the socket file behind
        Assert.True(File.Exists(path));
        using var listener = UnixSocket.Listen(path);
        using var client = UnixSocket.Connect(path);
        using var server = listener.Accept();
        Assert.NotNull(server);
    }

    [Fact]
    public void Listen_refuses_to_delete_a_regular_file()
    {
        var path = Path.Combine(_dir.FullName, "precious.txt");
        File.WriteAllText(path, "keep me");
        var e = Assert.Throws<LinuxException>(() => UnixSocket.Listen(path));
        Assert.Equal(Errno.EADDRINUSE, e.Errno);
        Assert.Equal("keep me", File.ReadAllText(path));
    }

    [Fact]
    public void Paths_too_long_for_sockaddr_un_are_rejected()
    {
        var path = Path.Combine(_dir.FullName, new string('x', 120));
        Assert.Throws<ArgumentException>(() => UnixSocket.Listen(path));
        Assert.Throws<ArgumentException>(() => UnixSocket.Connect(path));
    }

    [Fact]
    public void Poll_times_out_then_sees_data_and_writability()
    {
        var (a, b) = UnixSocket.Pair();
        using (a)
        using (b)
        {
            Assert.Equal(0, Poll.WaitReadable(b.Handle, 10));
            Assert.Equal(1, Poll.WaitWritable(a.Handle, 0));
            a.Send([9]);
            Assert.Equal(1, Poll.WaitReadable(b.Handle, 1000));
        }
    }

    [Fact]
    public void Received_fds_are_close_on_exec()
    {
        var (a, b) = UnixSocket.Pair();
        using (a)
        using (b)
        using (var e = EventFd.Create())
        {
            a.Send([1], [e.Fd]);
            var fds = new List<SafeFileHandle>();
            b.Receive(new byte[1], fds);
            using var fd = Assert.Single(fds);
            var flags = File.ReadAllText($"/proc/self/fdinfo/{fd.DangerousGetHandle()}");
            var line = flags.Split('\n').Single(l => l.StartsWith("flags:"));
            var octal = Convert.ToInt32(line["flags:".Length..].Trim(), 8);
            Assert.NotEqual(0, octal & 0x80000); // O_CLOEXEC (02000000)
        }
    }

    /// <summary>
    /// The probe's peer was sent over SCM_RIGHTS and our own copy closed: the probe reads end of
    /// stream only once every received copy was closed too (a leak shows as a timeout, -1).
    /// </summary>
    private static void AssertAllCopiesClosed(UnixSocket probe)
    {
        Assert.True(Poll.WaitReadable(probe.Handle, 5000) > 0, "a received copy of the peer is still open");
        Assert.Equal(0, probe.Receive(new byte[1], null, dontWait: true));
    }

    private static void SendRaw(UnixSocket socket, int[] fds)
    {
        var space = ControlMessage.Space(fds.Length * sizeof(int));
        var control = stackalloc ulong[space / sizeof(ulong)];
        var header = (CMsgHdr*)control;
        header->Length = (nuint)ControlMessage.Len(fds.Length * sizeof(int));
        header->Level = 1; // SOL_SOCKET
        header->Type = 1;  // SCM_RIGHTS
        fds.CopyTo(new Span<int>(ControlMessage.Data(header), fds.Length));
        byte data = 7;
        var iov = new IoVec { Base = &data, Length = 1 };
        var message = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)space };
        Assert.Equal(1, (int)Libc.SendMsg(socket.Handle, &message, 0));
    }
}
