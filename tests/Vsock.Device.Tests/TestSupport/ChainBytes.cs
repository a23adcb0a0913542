using Vsock.Device.Memory;
using Vsock.Device.Packets;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.TestSupport;

/// <summary>Lays out descriptor buffers in fake guest memory and reads/writes a chain as one byte stream.</summary>
internal static class ChainBytes
{
    /// <summary>
    /// Buffers of the given lengths from <paramref name="start"/> on, with an 8-byte hole between neighbours so a
    /// copy that forgets a descriptor boundary reads or writes the wrong bytes.
    /// </summary>
    public static GuestBuffer[] Layout(ulong start, bool writable, params uint[] lengths)
    {
        var buffers = new GuestBuffer[lengths.Length];
        var address = start;
        for (var i = 0; i < lengths.Length; i++)
        {
            buffers[i] = new GuestBuffer(address, lengths[i], writable);
            address += lengths[i] + 8UL;
        }
        return buffers;
    }

    public static byte[] Read(GuestMemory memory, ReadOnlySpan<GuestBuffer> buffers)
    {
        var bytes = new List<byte>();
        foreach (var b in buffers)
            bytes.AddRange(memory.GetSpan(b.Address, (int)b.Length).ToArray());
        return [.. bytes];
    }

    /// <summary>Writes <paramref name="bytes"/> from the start of the stream; stops at the end of the chain.</summary>
    public static void Write(GuestMemory memory, ReadOnlySpan<GuestBuffer> buffers, ReadOnlySpan<byte> bytes)
    {
        foreach (var b in buffers)
        {
            if (bytes.IsEmpty)
                return;
            var n = (int)Math.Min(b.Length, (uint)bytes.Length);
            bytes[..n].CopyTo(memory.GetSpan(b.Address, n));
            bytes = bytes[n..];
        }
    }

    public static byte[] Encode(in VsockHeader header)
    {
        var raw = new byte[VsockConstants.HeaderSize];
        header.Write(raw);
        return raw;
    }

    public static VsockHeader SampleHeader(uint len) => new()
    {
        SrcCid = 3,
        DstCid = VsockConstants.HostCid,
        SrcPort = 1234,
        DstPort = 5000,
        Len = len,
        Type = VsockType.Stream,
        Op = VsockOp.Rw,
        Flags = 0,
        BufAlloc = 262144,
        FwdCnt = 77,
    };
}
