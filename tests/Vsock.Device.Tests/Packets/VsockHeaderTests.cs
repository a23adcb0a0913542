using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Vsock.Device.Packets;

namespace Vsock.Device.Tests.Packets;

public class VsockHeaderTests
{
    [Fact]
    public void Header_is_44_packed_bytes_with_the_spec_offsets()
    {
        Assert.Equal(44, VsockConstants.HeaderSize);
        Assert.Equal(44, Unsafe.SizeOf<VsockHeader>());
        Assert.Equal(44, Marshal.SizeOf<VsockHeader>());
        string[] fields = ["SrcCid", "DstCid", "SrcPort", "DstPort", "Len", "Type", "Op", "Flags", "BufAlloc", "FwdCnt"];
        int[] offsets = [0, 8, 16, 20, 24, 28, 30, 32, 36, 40];
        Assert.Equal(offsets, fields.Select(f => (int)Marshal.OffsetOf<VsockHeader>(f)));
        Assert.Equal(offsets, new[]
        {
            VsockHeader.SrcCidOffset, VsockHeader.DstCidOffset, VsockHeader.SrcPortOffset, VsockHeader.DstPortOffset,
            VsockHeader.LenOffset, VsockHeader.TypeOffset, VsockHeader.OpOffset, VsockHeader.FlagsOffset,
            VsockHeader.BufAllocOffset, VsockHeader.FwdCntOffset,
        });
    }

    private static readonly VsockHeader Sample = new()
    {
        SrcCid = 0x0807060504030201,
        DstCid = 0x100F0E0D0C0B0A09,
        SrcPort = 0x14131211,
        DstPort = 0x18171615,
        Len = 0x1C1B1A19,
        Type = 0x1E1D,
        Op = 0x201F,
        Flags = 0x24232221,
        BufAlloc = 0x28272625,
        FwdCnt = 0x2C2B2A29,
    };

    [Fact]
    public void Writes_little_endian_fields_in_order()
    {
        var raw = new byte[44];
        Sample.Write(raw);
        // Each field's least significant byte first: bytes 1..44 in sequence.
        Assert.Equal(Enumerable.Range(1, 44).Select(i => (byte)i), raw);
    }

    [Fact]
    public void Reads_what_it_writes()
    {
        var raw = Enumerable.Range(1, 44).Select(i => (byte)i).ToArray();
        Assert.Equal(Sample, VsockHeader.Read(raw));
        var longer = new byte[100];
        Sample.Write(longer);
        Assert.Equal(Sample, VsockHeader.Read(longer));
        Assert.All(longer[44..], b => Assert.Equal(0, b));
    }

    [Fact]
    public void Short_spans_are_refused()
    {
        Assert.Throws<ArgumentException>(() => VsockHeader.Read(new byte[43]));
        Assert.Throws<ArgumentException>(() => Sample.Write(new byte[43]));
    }

    [Fact]
    public void Formats_for_logs()
    {
        var header = new VsockHeader { SrcCid = 3, SrcPort = 1234, DstCid = 2, DstPort = 5000, Op = VsockOp.Rw, Type = VsockType.Stream, Len = 100, BufAlloc = 262144, FwdCnt = 9 };
        Assert.Equal("3:1234 -> 2:5000 RW len 100 flags 0 buf_alloc 262144 fwd_cnt 9", header.ToString());
        header.Type = VsockType.SeqPacket;
        header.Op = VsockOp.CreditRequest;
        Assert.Equal("3:1234 -> 2:5000 CREDIT_REQUEST len 100 flags 0 buf_alloc 262144 fwd_cnt 9 type SEQPACKET", header.ToString());
        header.Type = 9;
        header.Op = 42;
        Assert.Equal("3:1234 -> 2:5000 OP(42) len 100 flags 0 buf_alloc 262144 fwd_cnt 9 type 9", header.ToString());
    }

    [Fact]
    public void Op_names_cover_every_op()
    {
        Assert.Equal(["INVALID", "REQUEST", "RESPONSE", "RST", "SHUTDOWN", "RW", "CREDIT_UPDATE", "CREDIT_REQUEST"],
            Enumerable.Range(0, 8).Select(op => VsockOp.Name((ushort)op)));
    }

    [Fact]
    public void Every_packet_error_has_its_own_description()
    {
        var texts = Enum.GetValues<VsockPacketError>().Select(VsockPacketErrors.Describe).ToList();
        Assert.Equal(texts.Count, texts.Distinct().Count());
        Assert.DoesNotContain(texts, t => t.StartsWith("Unknown", StringComparison.Ordinal));
        Assert.Equal("Unexpected write-only descriptor.", VsockPacketErrors.Describe(VsockPacketError.UnexpectedWriteOnlyDescriptor));
        Assert.StartsWith("Unknown", VsockPacketErrors.Describe((VsockPacketError)99));
    }
}
