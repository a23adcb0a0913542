using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vsock.Device.Interop;

/// <summary>
/// AF_VSOCK sockets for the guest-side backend. .NET's Socket refuses AddressFamily 40 at creation
/// (EAFNOSUPPORT), so socket/bind/listen/accept/connect happen here and a connected fd is then handed
/// to <see cref="Socket"/>, whose Send/Receive work on it (ConnectAsync/AcceptAsync do not).
/// Only ever run inside a guest: the host that builds this must not open AF_VSOCK sockets.
/// </summary>
public static class Vsock
{
    public const uint CidAny = 0xFFFFFFFF;
    public const uint CidHypervisor = 0;
    public const uint CidLocal = 1;
    public const uint CidHost = 2;
    public const uint PortAny = 0xFFFFFFFF;

    /// <summary><c>struct sockaddr_vm</c> from &lt;linux/vm_sockets.h&gt;: 16 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct SockAddrVm
    {
        public ushort Family;
        public ushort Reserved1;
        public uint Port;
        public uint Cid;
        public byte Flags;
        // svm_zero: the kernel rejects an address whose padding is not zero.
        private byte _zero0;
        private byte _zero1;
        private byte _zero2;

        public SockAddrVm(uint cid, uint port)
        {
            Family = Libc.AF_VSOCK;
            Cid = cid;
            Port = port;
        }
    }

    /// <summary>A non-blocking, close-on-exec listener bound to (<paramref name="cid"/>, <paramref name="port"/>).</summary>
    public static unsafe SafeFileHandle Listen(uint cid, uint port, int backlog = 128, SocketKind kind = SocketKind.Stream)
    {
        var socket = NewSocket(kind);
        try
        {
            var address = new SockAddrVm(cid, port);
            if (Libc.Bind(socket, &address, (uint)sizeof(SockAddrVm)) != 0)
                throw LinuxException.FromLastError($"bind vsock {cid}:{port}");
            if (Libc.Listen(socket, backlog) != 0)
                throw LinuxException.FromLastError($"listen vsock {cid}:{port}");
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Accepts one connection (non-blocking, close-on-exec); null when none is pending.</summary>
    public static unsafe SafeFileHandle? Accept(SafeFileHandle listener, out uint peerCid, out uint peerPort)
    {
        ArgumentNullException.ThrowIfNull(listener);
        while (true)
        {
            var address = default(SockAddrVm);
            var length = (uint)sizeof(SockAddrVm);
            var fd = Libc.Accept4(listener, &address, &length, Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC);
            if (fd >= 0)
            {
                peerCid = address.Cid;
                peerPort = address.Port;
                return new SafeFileHandle(fd, ownsHandle: true);
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno is Errno.EINTR or Errno.ECONNABORTED)
                continue;
            peerCid = 0;
            peerPort = 0;
            if (errno == Errno.EAGAIN)
                return null;
            throw new LinuxException(errno, "accept4 vsock");
        }
    }

    /// <summary>
    /// Starts a non-blocking connect. <paramref name="inProgress"/> true means wait for writability
    /// and then read <see cref="GetSocketError"/>; false means connected already.
    /// </summary>
    /// <param name="bufferSize">When not 0, SO_VM_SOCKETS_BUFFER_SIZE before the connect (within the socket's
    /// minimum and maximum, 128 bytes and 256 KiB unless raised), so the peer learns it from the first packet.</param>
    public static unsafe SafeFileHandle ConnectNonBlocking(uint cid, uint port, out bool inProgress, SocketKind kind = SocketKind.Stream,
        uint bufferSize = 0)
    {
        var socket = NewSocket(kind);
        try
        {
            if (bufferSize != 0)
                SetBufferSize(socket, bufferSize);
            var address = new SockAddrVm(cid, port);
            if (Libc.Connect(socket, &address, (uint)sizeof(SockAddrVm)) == 0)
            {
                inProgress = false;
                return socket;
            }
            var errno = Marshal.GetLastPInvokeError();
            // EINTR on a non-blocking connect: the attempt carries on asynchronously, like EINPROGRESS.
            if (errno is Errno.EINPROGRESS or Errno.EINTR)
            {
                inProgress = true;
                return socket;
            }
            throw new LinuxException(errno, $"connect vsock {cid}:{port}");
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>SO_ERROR: 0 once a non-blocking connect succeeded, else its errno.</summary>
    public static unsafe int GetSocketError(SafeFileHandle socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        var error = 0;
        var length = (uint)sizeof(int);
        if (Libc.GetSockOpt(socket, Libc.SOL_SOCKET, Libc.SO_ERROR, &error, &length) != 0)
            throw LinuxException.FromLastError("getsockopt SO_ERROR");
        return error;
    }

    /// <summary>
    /// SO_VM_SOCKETS_BUFFER_SIZE: the receive buffer the socket advertises to its peer (buf_alloc; 256 KiB unless
    /// set). A SEQPACKET peer refuses to send a longer message (EMSGSIZE), so it is also the longest we can receive.
    /// </summary>
    public static unsafe uint GetBufferSize(SafeHandle socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ulong size = 0;
        var length = (uint)sizeof(ulong);
        if (Libc.GetSockOpt(socket, Libc.AF_VSOCK, Libc.SO_VM_SOCKETS_BUFFER_SIZE, &size, &length) != 0)
            throw LinuxException.FromLastError("getsockopt SO_VM_SOCKETS_BUFFER_SIZE");
        return (uint)Math.Min(size, uint.MaxValue);
    }

    /// <summary>
    /// Lowers SO_VM_SOCKETS_BUFFER_SIZE to <paramref name="size"/> if that is under the current size (never below the
    /// socket's minimum): raising it past SO_VM_SOCKETS_BUFFER_MAX_SIZE would fail.
    /// </summary>
    public static unsafe void SetBufferSize(SafeHandle socket, uint size)
    {
        var current = GetBufferSize(socket);
        if (size >= current)
            return;
        ulong value = Math.Max(size, MinBufferSize);
        if (Libc.SetSockOpt(socket, Libc.AF_VSOCK, Libc.SO_VM_SOCKETS_BUFFER_SIZE, &value, sizeof(ulong)) != 0)
            throw LinuxException.FromLastError("setsockopt SO_VM_SOCKETS_BUFFER_SIZE");
    }

    /// <summary>VSOCK_BUFFER_MIN_SIZE: the default SO_VM_SOCKETS_BUFFER_MIN_SIZE.</summary>
    private const uint MinBufferSize = 128;

    /// <summary>
    /// Hands a connected vsock fd to a <see cref="Socket"/>, which owns it from then on:
    /// <paramref name="connected"/> is left closed-without-closing and must not be used again.
    /// The fd is made blocking first, so both the synchronous and the async calls of the Socket work.
    /// </summary>
    public static Socket ToSocket(SafeFileHandle connected)
    {
        ArgumentNullException.ThrowIfNull(connected);
        ObjectDisposedException.ThrowIf(connected.IsClosed, connected);
        // Socket(SafeSocketHandle) reads O_NONBLOCK as "the owner set Blocking = false" but leaves its
        // Blocking property true, and in that state every synchronous Send/Receive throws
        // InvalidOperationException ("Cannot block a call on this socket while an earlier asynchronous
        // call is in progress"; seen in a guest with the fds Accept and ConnectNonBlocking return). A
        // blocking fd is what a Socket starts from anyway: its first async call makes the fd non-blocking
        // and synchronous calls are emulated from then on.
        ClearNonBlocking(connected);
        var fd = connected.DangerousGetHandle();
        connected.SetHandleAsInvalid(); // ownership moves to the SafeSocketHandle below
        var socketHandle = new SafeSocketHandle(fd, ownsHandle: true);
        try
        {
            return new Socket(socketHandle);
        }
        catch
        {
            socketHandle.Dispose();
            throw;
        }
    }

    private static void ClearNonBlocking(SafeFileHandle socket)
    {
        var flags = Libc.Fcntl(socket, Libc.F_GETFL, 0);
        if (flags < 0)
            throw LinuxException.FromLastError("fcntl F_GETFL");
        if ((flags & Libc.O_NONBLOCK) != 0 && Libc.Fcntl(socket, Libc.F_SETFL, flags & ~Libc.O_NONBLOCK) != 0)
            throw LinuxException.FromLastError("fcntl F_SETFL");
    }

    private static SafeFileHandle NewSocket(SocketKind kind)
    {
        var fd = Libc.Socket(Libc.AF_VSOCK, kind.SocketType() | Libc.SOCK_CLOEXEC | Libc.SOCK_NONBLOCK, 0);
        if (fd < 0)
            throw LinuxException.FromLastError("socket AF_VSOCK");
        return new SafeFileHandle(fd, ownsHandle: true);
    }
}
