using System.Runtime.InteropServices;
using Vsock.Device.VhostUser;

namespace Vsock.Device.Tests.VhostUser;

public sealed class VhostUserCodecTests
{
    private static byte[] Header(uint request, uint flags, uint size) =>
        Frontend.Bytes(new VhostUserHeader { Request = (VhostUserRequest)request, Flags = flags, Size = size });

    [Fact]
    public void Decodes_a_request_header()
    {
        var h = VhostUserCodec.DecodeHeader(Header(9, 1, 40));
        Assert.Equal(VhostUserRequest.SetVringAddr, h.Request);
        Assert.Equal(1u, h.Flags);
        Assert.Equal(40u, h.Size);
    }

    [Fact]
    public void Accepts_need_reply_and_the_largest_payload()
    {
        var h = VhostUserCodec.DecodeHeader(Header(5, 1 | VhostUserCodec.NeedReplyFlag, VhostUserCodec.MaxPayloadSize));
        Assert.Equal((uint)VhostUserCodec.MaxPayloadSize, h.Size);
    }

    [Fact]
    public void Passes_unknown_request_codes_through_for_the_session_to_name()
    {
        Assert.Equal((VhostUserRequest)99, VhostUserCodec.DecodeHeader(Header(99, 1, 0)).Request);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(2u)]
    [InlineData(3u)]
    [InlineData(1u | 0x4)] // REPLY on a request
    [InlineData(1u | 0x10)] // reserved bit
    [InlineData(1u | 0x8000_0000)]
    public void Rejects_bad_flags(uint flags)
    {
        var e = Assert.Throws<VhostUserProtocolException>(() => VhostUserCodec.DecodeHeader(Header(1, flags, 0)));
        Assert.Equal(VhostUserError.BadHeader, e.Error);
        Assert.False(e.IsRejection);
        Assert.Contains("GET_FEATURES", e.Message);
    }

    [Theory]
    [InlineData(4097u)]
    [InlineData(uint.MaxValue)]
    public void Rejects_oversized_payloads(uint size)
    {
        var e = Assert.Throws<VhostUserProtocolException>(() => VhostUserCodec.DecodeHeader(Header(5, 1, size)));
        Assert.Equal(VhostUserError.BadHeader, e.Error);
    }

    [Fact]
    public void Short_header_span_is_a_caller_bug()
    {
        Assert.Throws<ArgumentException>(() => VhostUserCodec.DecodeHeader(new byte[11]));
    }

    [Fact]
    public void Reply_carries_exactly_reply_and_version_flags()
    {
        var buffer = new byte[64];
        var n = VhostUserCodec.EncodeReply(VhostUserRequest.GetFeatures, 0x1_6100_0000UL, buffer);
        Assert.Equal(20, n);
        var (header, payload) = Frontend.ParseReply(buffer.AsSpan(0, n));
        Assert.Equal(VhostUserRequest.GetFeatures, header.Request);
        Assert.Equal(0x5u, header.Flags); // QEMU's vhost_user_read_header insists on REPLY|1
        Assert.Equal(8u, header.Size);
        Assert.Equal(0x1_6100_0000UL, MemoryMarshal.Read<ulong>(payload));
    }

    [Fact]
    public void Reply_with_struct_payload()
    {
        var buffer = new byte[64];
        var n = VhostUserCodec.EncodeReply(VhostUserRequest.GetVringBase, new VhostUserVringState { Index = 1, Num = 42 }, buffer);
        Assert.Equal(20, n);
        Assert.Equal(Frontend.State(1, 42), buffer[12..20]);
    }

    [Fact]
    public void Encoding_into_a_short_buffer_throws()
    {
        Assert.Throws<ArgumentException>(() => VhostUserCodec.EncodeReply(VhostUserRequest.GetFeatures, new byte[8], new byte[19]));
        Assert.Throws<ArgumentException>(() => VhostUserCodec.EncodeReply(VhostUserRequest.GetConfig, new byte[4097], new byte[5000]));
    }

    [Fact]
    public void Encoded_request_decodes_back()
    {
        var bytes = Frontend.Encode(VhostUserRequest.SetVringNum, Frontend.State(0, 128), needReply: true);
        var h = VhostUserCodec.DecodeHeader(bytes);
        Assert.Equal(VhostUserRequest.SetVringNum, h.Request);
        Assert.Equal(VhostUserCodec.Version | VhostUserCodec.NeedReplyFlag, h.Flags);
        Assert.Equal(8u, h.Size);
    }

    [Theory]
    [InlineData(VhostUserRequest.SetVringAddr, "SET_VRING_ADDR")]
    [InlineData(VhostUserRequest.GetFeatures, "GET_FEATURES")]
    [InlineData(VhostUserRequest.SetBackendReqFd, "SET_BACKEND_REQ_FD")]
    [InlineData((VhostUserRequest)99, "request 99")]
    public void Names_requests_for_logs(VhostUserRequest request, string name)
    {
        Assert.Equal(name, VhostUserCodec.Name(request));
    }
}
