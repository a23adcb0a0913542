using System.Runtime.InteropServices;
using Vsock.Device.Interop;
using VsockApi = Vsock.Device.Interop.Vsock;

namespace Vsock.Device.Tests.Interop;

/// <summary>
/// Sizes and offsets of the structs we hand to the kernel, against the C headers. The expected
/// numbers were printed once on x86_64 (glibc 2.36) by:
/// <code>
/// #define _GNU_SOURCE
/// #include &lt;stdio.h&gt; &lt;stddef.h&gt; &lt;sys/epoll.h&gt; &lt;sys/socket.h&gt; &lt;sys/uio.h&gt; &lt;sys/un.h&gt;
/// #include &lt;poll.h&gt; &lt;sys/time.h&gt; &lt;linux/vm_sockets.h&gt;
/// int main(void) {
///   printf("%zu %zu\n", sizeof(struct epoll_event), offsetof(struct epoll_event, data));            // 12 4
///   printf("%zu %zu %zu %zu %zu %zu\n", sizeof(struct sockaddr_vm), offsetof(struct sockaddr_vm, svm_family),
///     offsetof(struct sockaddr_vm, svm_reserved1), offsetof(struct sockaddr_vm, svm_port),
///     offsetof(struct sockaddr_vm, svm_cid), offsetof(struct sockaddr_vm, svm_flags));                // 16 0 2 4 8 12
///   printf("%zu %zu %zu %zu %zu %zu %zu %zu\n", sizeof(struct msghdr), offsetof(struct msghdr, msg_name),
///     offsetof(struct msghdr, msg_namelen), offsetof(struct msghdr, msg_iov), offsetof(struct msghdr, msg_iovlen),
///     offsetof(struct msghdr, msg_control), offsetof(struct msghdr, msg_controllen),
///     offsetof(struct msghdr, msg_flags));                                                            // 56 0 8 16 24 32 40 48
///   printf("%zu %zu\n", sizeof(struct iovec), offsetof(struct iovec, iov_len));                       // 16 8
///   printf("%zu %zu %zu\n", sizeof(struct cmsghdr), offsetof(struct cmsghdr, cmsg_level),
///     offsetof(struct cmsghdr, cmsg_type));                                                           // 16 8 12
///   printf("%zu %zu %zu %zu %zu %zu\n", CMSG_SPACE(4), CMSG_LEN(4), CMSG_SPACE(12), CMSG_LEN(12),
///     CMSG_SPACE(128), CMSG_LEN(128));                                                                // 24 20 32 28 144 144
///   printf("%zu %zu %zu %zu\n", sizeof(struct pollfd), sizeof(struct timeval), sizeof(struct sockaddr_un),
///     offsetof(struct sockaddr_un, sun_path));                                                        // 8 16 110 2
/// }
/// </code>
/// aarch64 agrees on all of these except epoll_event (16 bytes, not packed), which Epoll converts.
/// </summary>
public sealed unsafe class NativeLayoutTests
{
    [Fact]
    public void EpollEvent_is_packed_like_the_x86_64_kernel_struct()
    {
        Assert.Equal(12, sizeof(EpollEvent));
        Assert.Equal(0, (int)Marshal.OffsetOf<EpollEvent>(nameof(EpollEvent.Events)));
        Assert.Equal(4, (int)Marshal.OffsetOf<EpollEvent>(nameof(EpollEvent.Data)));
        Assert.Equal(16, sizeof(AlignedEpollEvent));
        Assert.Equal(8, (int)Marshal.OffsetOf<AlignedEpollEvent>(nameof(AlignedEpollEvent.Data)));
    }

    [Fact]
    public void SockAddrVm_matches_linux_vm_sockets_h()
    {
        Assert.Equal(16, sizeof(VsockApi.SockAddrVm));
        var address = new VsockApi.SockAddrVm(0x11223344, 0x55667788);
        var b = (byte*)&address;
        Assert.Equal(0, OffsetOf(&address, &address.Family));
        Assert.Equal(2, OffsetOf(&address, &address.Reserved1));
        Assert.Equal(4, OffsetOf(&address, &address.Port));
        Assert.Equal(8, OffsetOf(&address, &address.Cid));
        Assert.Equal(12, OffsetOf(&address, &address.Flags));
        Assert.Equal(40, *(ushort*)b);
        Assert.Equal(0x55667788u, *(uint*)(b + 4));
        Assert.Equal(0x11223344u, *(uint*)(b + 8));
        Assert.Equal(0, b[12] | b[13] | b[14] | b[15]); // svm_flags and svm_zero
    }

    [Fact]
    public void MsgHdr_matches_sys_socket_h()
    {
        Assert.Equal(56, sizeof(MsgHdr));
        var m = default(MsgHdr);
        Assert.Equal(0, OffsetOf(&m, &m.Name));
        Assert.Equal(8, OffsetOf(&m, &m.NameLength));
        Assert.Equal(16, OffsetOf(&m, &m.Iov));
        Assert.Equal(24, OffsetOf(&m, &m.IovLength));
        Assert.Equal(32, OffsetOf(&m, &m.Control));
        Assert.Equal(40, OffsetOf(&m, &m.ControlLength));
        Assert.Equal(48, OffsetOf(&m, &m.Flags));
    }

    [Fact]
    public void IoVec_CMsgHdr_PollFd_and_SockAddrUn_match_the_headers()
    {
        Assert.Equal(16, sizeof(IoVec));
        Assert.Equal(8, (int)Marshal.OffsetOf<IoVec>(nameof(IoVec.Length)));
        Assert.Equal(16, sizeof(CMsgHdr));
        Assert.Equal(8, (int)Marshal.OffsetOf<CMsgHdr>(nameof(CMsgHdr.Level)));
        Assert.Equal(12, (int)Marshal.OffsetOf<CMsgHdr>(nameof(CMsgHdr.Type)));
        Assert.Equal(8, sizeof(PollFd));
        Assert.Equal(6, (int)Marshal.OffsetOf<PollFd>(nameof(PollFd.ReturnedEvents)));
        Assert.Equal(110, sizeof(SockAddrUn));
        var u = default(SockAddrUn);
        Assert.Equal(2, OffsetOf(&u, u.Path));
    }

    [Theory]
    [InlineData(4, 24, 20)]
    [InlineData(12, 32, 28)]
    [InlineData(128, 144, 144)]
    [InlineData(0, 16, 16)]
    public void Cmsg_macros_match_glibc(int dataLength, int space, int len)
    {
        Assert.Equal(space, ControlMessage.Space(dataLength));
        Assert.Equal(len, ControlMessage.Len(dataLength));
    }

    [Fact]
    public void Cmsg_data_follows_the_16_byte_header_and_the_max_fd_buffer_fits_32_fds()
    {
        var header = default(CMsgHdr);
        Assert.Equal(16, (int)(ControlMessage.Data(&header) - (byte*)&header));
        Assert.Equal(ControlMessage.MaxFdsSpace, ControlMessage.Space(ControlMessage.MaxFds * sizeof(int)));
        Assert.Equal(144, ControlMessage.MaxFdsSpace);
    }

    [Fact]
    public void Cmsg_walk_visits_each_header_and_stops_at_a_bad_length()
    {
        var buffer = stackalloc ulong[8]; // 64 bytes
        var control = (byte*)buffer;
        new Span<byte>(control, 64).Clear();
        var first = (CMsgHdr*)control;
        first->Length = (nuint)ControlMessage.Len(4); // 20 -> next at 24
        var second = (CMsgHdr*)(control + 24);
        second->Length = (nuint)ControlMessage.Len(8); // 24 -> ends at 48
        var message = new MsgHdr { Control = control, ControlLength = 48 };

        Assert.True(ControlMessage.FirstHeader(&message) == first);
        Assert.True(ControlMessage.NextHeader(&message, first) == second);
        Assert.True(ControlMessage.NextHeader(&message, second) == null);

        second->Length = 1000; // claims more than the buffer holds
        Assert.True(ControlMessage.NextHeader(&message, first) == null);
        Assert.False(ControlMessage.FitsInBuffer(&message, second));

        first->Length = 0; // would never advance
        Assert.True(ControlMessage.NextHeader(&message, first) == null);

        first->Length = nuint.MaxValue - 3; // would wrap when aligned
        Assert.True(ControlMessage.NextHeader(&message, first) == null);

        var tooShort = new MsgHdr { Control = control, ControlLength = 15 };
        Assert.True(ControlMessage.FirstHeader(&tooShort) == null);
    }

    private static int OffsetOf(void* structure, void* field) => (int)((byte*)field - (byte*)structure);
}
