using System.Net.Sockets;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Interop;
using VsockApi = Vsock.Device.Interop.Vsock;

namespace Vsock.Device.Tests.Interop;

/// <summary>
/// AF_VSOCK itself must never be opened on the build host, so these exercise only what is
/// family-independent (SO_ERROR, handing an fd to System.Net.Sockets) on unix sockets; the
/// sockaddr_vm layout is in <see cref="NativeLayoutTests"/>.
/// </summary>
public sealed class VsockTests
{
    [Fact]
    public void Well_known_cids_and_ports()
    {
        Assert.Equal(0xFFFFFFFFu, VsockApi.CidAny);
        Assert.Equal(0u, VsockApi.CidHypervisor);
        Assert.Equal(1u, VsockApi.CidLocal);
        Assert.Equal(2u, VsockApi.CidHost);
        Assert.Equal(0xFFFFFFFFu, VsockApi.PortAny);
    }

    [Fact]
    public void SockAddrVm_carries_family_40_and_the_address()
    {
        var address = new VsockApi.SockAddrVm(3, 1234);
        Assert.Equal(40, address.Family);
        Assert.Equal(3u, address.Cid);
        Assert.Equal(1234u, address.Port);
        Assert.Equal(0, address.Flags);
    }

    [Fact]
    public void ToSocket_moves_ownership_to_a_working_Socket()
    {
        var (a, b) = UnixSocket.Pair();
        using (a)
        {
            var raw = b.Handle.DangerousGetHandle();
            using var socket = VsockApi.ToSocket(b.Handle);
            Assert.True(b.Handle.IsClosed); // marked closed without closing the fd
            Assert.Equal(raw, socket.Handle);

            a.Send("to socket"u8);
            var buffer = new byte[16];
            Assert.Equal(9, socket.Receive(buffer));
            socket.Send("back"u8);
            Assert.Equal(4, a.Receive(buffer, null));
            Assert.Equal("back"u8.ToArray(), buffer[..4]);

            b.Dispose(); // must not close the fd the Socket now owns
            socket.Send([1]);
            Assert.Equal(1, a.Receive(buffer, null));
        }
    }

    [Fact]
    public async Task ToSocket_of_a_non_blocking_fd_serves_synchronous_and_async_calls()
    {
        // Accept and ConnectNonBlocking hand out O_NONBLOCK fds; a Socket wrapped around one as it was
        // threw InvalidOperationException on every synchronous call (found in a guest, vsock-selftest).
        var (a, b) = UnixSocket.Pair();
        using (a)
        {
            b.SetNonBlocking(true);
            using var socket = VsockApi.ToSocket(b.Handle);
            Assert.True(socket.Blocking);
            var buffer = new byte[16];

            // A synchronous Receive that has to wait, then a synchronous Send.
            var late = Task.Run(async () =>
            {
                await Task.Delay(50);
                a.Send("late"u8);
            });
            Assert.Equal(4, socket.Receive(buffer));
            await late;
            Assert.Equal(2, socket.Send("ok"u8));
            Assert.Equal(2, a.Receive(buffer, null));

            // Async calls, then synchronous ones again on the same Socket.
            var pending = socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).AsTask();
            a.Send("async"u8);
            Assert.Equal(5, await pending);
            Assert.Equal(3, await socket.SendAsync("abc"u8.ToArray(), SocketFlags.None));
            Assert.Equal(3, a.Receive(buffer, null));
            a.Send("sync"u8);
            Assert.Equal(4, socket.Receive(buffer));
        }
    }

    [Fact]
    public void ToSocket_refuses_a_closed_handle()
    {
        var (a, b) = UnixSocket.Pair();
        a.Dispose();
        b.Dispose();
        Assert.Throws<ObjectDisposedException>(() => VsockApi.ToSocket(b.Handle));
    }

    [Fact]
    public void GetSocketError_reads_SO_ERROR()
    {
        var (a, b) = UnixSocket.Pair();
        using (a)
        using (b)
            Assert.Equal(0, VsockApi.GetSocketError(a.Handle));
    }

    [Fact]
    public void GetSocketError_on_a_non_socket_is_ENOTSOCK()
    {
        using var e = EventFd.Create();
        var error = Assert.Throws<LinuxException>(() => VsockApi.GetSocketError(e.Handle));
        Assert.Equal(Errno.ENOTSOCK, error.Errno);
    }

    [Fact]
    public void The_socket_calls_compile_against_the_documented_signatures()
    {
        // Referenced, never invoked: opening AF_VSOCK on this host is forbidden.
        Func<uint, uint, int, SocketKind, SafeFileHandle> listen = VsockApi.Listen;
        Assert.NotNull(listen);
        Assert.Equal(typeof(SafeFileHandle), typeof(VsockApi).GetMethod(nameof(VsockApi.Accept))!.ReturnType);
        Assert.Equal(typeof(SafeFileHandle), typeof(VsockApi).GetMethod(nameof(VsockApi.ConnectNonBlocking))!.ReturnType);
        Assert.Equal(typeof(Socket), typeof(VsockApi).GetMethod(nameof(VsockApi.ToSocket))!.ReturnType);
    }
}
