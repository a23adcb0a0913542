using Vsock.Device.Memory;
using Vsock.Device.Packets;
using Vsock.Device.Tests.TestSupport;
using Vsock.Device.Virtio;
using Vsock.Models;

namespace Vsock.Device.Tests.Packets;

/// <summary>
/// Feeds random and mutated chains and headers to both packet parsers and checks every outcome against a naive
/// byte-stream model: the same error, the same header, the same payload bytes, writes landing exactly where the
/// model says. Only <see cref="VsockPacketError"/> results may come out: no exception, no write outside memory.
/// </summary>
public sealed unsafe class PacketParserRandomizedTests : IDisposable
{
    private const int Inputs = 100_000;
    private const ulong RamSize = 0x2_0000;
    private const ulong Second = 0x3_0000;
    private const ulong SecondSize = 0x1000;

    private readonly NativeGuestMemory _ram = new((0, RamSize), (Second, SecondSize));
    private ulong _nextAddress;

    public void Dispose() => _ram.Dispose();

    [Fact]
    public void Random_chains_only_yield_typed_results()
    {
        var random = new Random(0x7ac0_0001);
        _ram.Randomize(random);
        var memory = _ram.Memory;
        var txOutcomes = new Dictionary<VsockPacketError, int>();
        var rxOutcomes = new Dictionary<VsockPacketError, int>();

        for (var i = 0; i < Inputs; i++)
        {
            var buffers = random.Next(3) == 0 ? RandomChain(random) : MutatedValidChain(random);
            var maxDataSize = random.Next(4) switch
            {
                0 => uint.MaxValue,
                1 => VsockConstants.MaxPacketPayload,
                2 => (uint)random.Next(0, 5000),
                _ => (uint)random.Next(0, 70000),
            };

            var txError = VsockPacket.TryFromTxChain(memory, new DescriptorChain(0, buffers), maxDataSize, out var tx);
            txOutcomes[txError] = txOutcomes.GetValueOrDefault(txError) + 1;
            Assert.Equal(PacketModel.Tx(memory, buffers, maxDataSize, out var header, out var payload), txError);
            if (txError == VsockPacketError.None)
                CheckTx(random, memory, buffers, ref tx, header, payload!);

            var rxError = VsockPacket.TryFromRxChain(memory, new DescriptorChain(0, buffers), out var rx);
            rxOutcomes[rxError] = rxOutcomes.GetValueOrDefault(rxError) + 1;
            Assert.Equal(PacketModel.Rx(memory, buffers, out var capacity), rxError);
            if (rxError == VsockPacketError.None)
                CheckRx(random, memory, buffers, ref rx, capacity);
        }

        Assert.True(_ram.GuardsIntact);
        // Every outcome must actually be reached, or the test proves little.
        foreach (var error in new[]
                 {
                     VsockPacketError.None, VsockPacketError.DescriptorChainTooShort, VsockPacketError.DescriptorLengthTooSmall,
                     VsockPacketError.DescriptorLengthTooLong, VsockPacketError.InvalidHeaderLen,
                     VsockPacketError.UnexpectedWriteOnlyDescriptor, VsockPacketError.InvalidMemoryAccess,
                 })
            Assert.True(txOutcomes.GetValueOrDefault(error) > 100, $"TX {error} seen {txOutcomes.GetValueOrDefault(error)} times");
        foreach (var error in new[]
                 {
                     VsockPacketError.None, VsockPacketError.DescriptorChainTooShort, VsockPacketError.DescriptorLengthTooSmall,
                     VsockPacketError.DescriptorLengthTooLong, VsockPacketError.UnexpectedReadOnlyDescriptor,
                     VsockPacketError.InvalidMemoryAccess,
                 })
            Assert.True(rxOutcomes.GetValueOrDefault(error) > 100, $"RX {error} seen {rxOutcomes.GetValueOrDefault(error)} times");
    }

    private static void CheckTx(Random random, GuestMemory memory, GuestBuffer[] buffers, ref VsockPacket tx, VsockHeader header, byte[] payload)
    {
        Assert.Equal(header, tx.Header);
        Assert.Equal(header.Len, tx.DataCapacity);
        var offset = (uint)random.Next(0, payload.Length + 5);
        var destination = new byte[random.Next(0, payload.Length + 5)];
        var copied = tx.CopyDataTo(destination, offset);
        var expected = payload.Skip((int)offset).Take(destination.Length).ToArray();
        Assert.Equal(expected, destination[..copied]);

        if (random.Next(8) == 0)
        {
            var before = PacketModel.ReadStream(memory, buffers, 44UL + header.Len);
            tx.SetHeader(RandomHeader(random));
            tx.FwdCnt = (uint)random.Next();
            Assert.Equal(before, PacketModel.ReadStream(memory, buffers, 44UL + header.Len));
        }
    }

    private static void CheckRx(Random random, GuestMemory memory, GuestBuffer[] buffers, ref VsockPacket rx, uint capacity)
    {
        Assert.Equal(default, rx.Header);
        Assert.Equal(capacity, rx.DataCapacity);
        var length = 44UL + capacity;

        var expected = PacketModel.ReadStream(memory, buffers, length)!;
        var offset = (uint)random.Next(0, (int)capacity + 5);
        var source = new byte[random.Next(0, (int)capacity + 5)];
        random.NextBytes(source);
        var written = rx.WriteData(source, offset);
        var n = offset >= capacity ? 0 : Math.Min(source.Length, (int)(capacity - offset));
        Assert.Equal(n, written);
        if (n > 0)
            source.AsSpan(0, n).CopyTo(expected.AsSpan(44 + (int)offset));

        var header = RandomHeader(random);
        rx.SetHeader(header);
        rx.Op = (ushort)random.Next(8);
        rx.SetFlag((uint)random.Next(4));
        rx.Header.Write(expected);
        // Random chains may alias guest bytes; the stream model only holds for disjoint buffers.
        if (!PacketModel.Overlap(buffers, length))
            Assert.Equal(expected, PacketModel.ReadStream(memory, buffers, length));
    }

    private static VsockHeader RandomHeader(Random random)
    {
        var raw = new byte[44];
        random.NextBytes(raw);
        return VsockHeader.Read(raw);
    }

    /// <summary>Anything: 0-6 descriptors, mostly inside memory, random directions and lengths.</summary>
    private static GuestBuffer[] RandomChain(Random random)
    {
        var count = random.Next(20) == 0 ? 0 : random.Next(1, 7);
        var writable = random.Next(2) == 0;
        var huge = random.Next(15) == 0; // lengths anywhere in u32: totals beyond 4 GiB
        var buffers = new GuestBuffer[count];
        for (var i = 0; i < count; i++)
        {
            var length = huge ? (uint)random.NextInt64(0, 1L << 32) : random.Next(20) switch
            {
                < 12 => (uint)random.Next(0, 101),
                < 17 => (uint)random.Next(0, 2001),
                < 19 => (uint)random.Next(60000, 70001),
                _ => (uint)random.NextInt64(0, 1L << 32),
            };
            var address = random.Next(20) switch
            {
                < 15 when length <= RamSize => (ulong)random.NextInt64(0, (long)(RamSize - length + 1)),
                < 17 when length <= SecondSize => Second + (ulong)random.Next(0, (int)(SecondSize - length + 1)),
                < 19 => (ulong)random.NextInt64(0, 0x4_0000),
                _ => ulong.MaxValue - (ulong)random.Next(0, 100),
            };
            buffers[i] = new GuestBuffer(address, length, random.Next(10) == 0 ? !writable : writable);
        }
        return buffers;
    }

    /// <summary>
    /// A well-formed TX or RX chain (header split over 1-3 descriptors, payload over 0-4, its header written to
    /// guest memory), then usually one mutation: a flipped direction, a length off by a little, a buffer moved
    /// out of memory, or a bad header <c>len</c>.
    /// </summary>
    private GuestBuffer[] MutatedValidChain(Random random)
    {
        var writable = random.Next(2) == 0;
        var payloadLength = random.Next(10) == 0 ? (uint)random.Next(0, 65537 + 100) : (uint)random.Next(0, 2000);
        var lengths = new List<uint>();
        uint headerLeft = 44;
        var headerPieces = random.Next(1, 4);
        for (var i = 0; i < headerPieces - 1 && headerLeft > 0; i++)
        {
            var piece = (uint)random.Next(0, (int)headerLeft + 1);
            lengths.Add(piece);
            headerLeft -= piece;
        }
        var dataPieces = random.Next(0, 5);
        if (dataPieces == 0)
        {
            lengths.Add(headerLeft + payloadLength); // header tail and payload share a descriptor
        }
        else
        {
            lengths.Add(headerLeft);
            var dataLeft = payloadLength;
            for (var i = 0; i < dataPieces - 1; i++)
            {
                var piece = (uint)random.Next(0, (int)dataLeft + 1);
                lengths.Add(piece);
                dataLeft -= piece;
            }
            lengths.Add(dataLeft);
        }

        var buffers = new GuestBuffer[lengths.Count];
        for (var i = 0; i < buffers.Length; i++)
            buffers[i] = new GuestBuffer(Place(random, lengths[i]), lengths[i], writable);

        var header = RandomHeader(random);
        header.Len = payloadLength;
        ChainBytes.Write(_ram.Memory, buffers, ChainBytes.Encode(header));

        var victim = random.Next(buffers.Length);
        switch (random.Next(8))
        {
            case 0:
                buffers[victim] = buffers[victim] with { DeviceWritable = !writable };
                break;
            case 1:
                var delta = random.Next(-10, 11);
                buffers[victim] = buffers[victim] with { Length = (uint)Math.Max(0, buffers[victim].Length + delta) };
                break;
            case 2:
                buffers[victim] = buffers[victim] with { Address = random.Next(2) == 0 ? RamSize - 5 : 0x8_0000 };
                break;
            case 3:
                header.Len = random.Next(3) switch
                {
                    0 => payloadLength + 1,
                    1 => 65537,
                    _ => (uint)random.NextInt64(0, 1L << 32),
                };
                ChainBytes.Write(_ram.Memory, buffers, ChainBytes.Encode(header));
                break;
                // Otherwise left valid.
        }
        return buffers;
    }

    /// <summary>Room for <paramref name="length"/> bytes in the first region, with a random gap before it.</summary>
    private ulong Place(Random random, uint length)
    {
        var address = _nextAddress + (ulong)random.Next(0, 64);
        if (address + length > RamSize)
            address = (ulong)random.Next(0, 64);
        _nextAddress = address + length;
        return address;
    }
}
