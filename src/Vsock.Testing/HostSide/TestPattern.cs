using System.Buffers.Binary;

namespace Vsock.Testing.HostSide;

/// <summary>
/// The data stream and checksum shared with the guest program (tests/e2e/guest/vsock-test.c):
/// byte <c>i</c> of stream <c>seed</c> is byte <c>i % 8</c> (little-endian) of
/// <c>splitmix64(seed * 2^32 + i / 8)</c>; checksums are 64-bit FNV-1a. Position-addressable, so
/// either side can verify any chunk without buffering the whole transfer (<see cref="PatternTransfer"/>).
/// <see cref="RandomBytes"/> is for tests that only need some data of a length, different per seed.
/// </summary>
public static class TestPattern
{
    public const ulong FnvOffset = 0xcbf29ce484222325;
    private const ulong FnvPrime = 0x100000001b3;

    public static ulong SplitMix64(ulong x)
    {
        unchecked
        {
            x += 0x9E3779B97F4A7C15;
            x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9;
            x = (x ^ (x >> 27)) * 0x94D049BB133111EB;
            return x ^ (x >> 31);
        }
    }

    public static void Fill(Span<byte> destination, long offset, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var i = 0;
        while (i < destination.Length)
        {
            var position = (ulong)offset + (ulong)i;
            var block = SplitMix64(unchecked((seed << 32) + (position >> 3)));
            var lane = (int)(position & 7);
            if (lane == 0 && destination.Length - i >= 8)
            {
                // Whole blocks in one store: Vsock.InGuest fills megabytes with this inside TCG guests.
                BinaryPrimitives.WriteUInt64LittleEndian(destination[i..], block);
                i += 8;
                continue;
            }
            for (; lane < 8 && i < destination.Length; lane++, i++)
                destination[i] = (byte)(block >> (8 * lane));
        }
    }

    public static ulong Fnv1a(ulong hash, ReadOnlySpan<byte> data)
    {
        unchecked
        {
            foreach (var b in data)
            {
                hash ^= b;
                hash *= FnvPrime;
            }
        }
        return hash;
    }

    /// <summary>Checksum of the first <paramref name="length"/> bytes of stream <paramref name="seed"/>.</summary>
    public static ulong Checksum(long length, ulong seed)
    {
        var buffer = new byte[64 * 1024];
        var hash = FnvOffset;
        for (long done = 0; done < length;)
        {
            var n = (int)Math.Min(buffer.Length, length - done);
            Fill(buffer.AsSpan(0, n), done, seed);
            hash = Fnv1a(hash, buffer.AsSpan(0, n));
            done += n;
        }
        return hash;
    }

    /// <summary>The lengths every SEQPACKET exchange starts with (issue 12), before the seeded random ones.</summary>
    public static readonly int[] SeqNamedLengths = [1, 100, 4095, 4096, 4097, 65536, 65537, 200000];

    /// <summary>Message <paramref name="index"/> of a SEQPACKET exchange (vsock-test.c seq_length): named, then 1..200,000 bytes.</summary>
    public static int SeqLength(long index, ulong seed) => index < SeqNamedLengths.Length
        ? SeqNamedLengths[index]
        : (int)(SplitMix64(unchecked((seed << 32) ^ (0xA5A5UL + (ulong)index))) % 200000) + 1;

    /// <summary>The pattern stream message <paramref name="index"/> is made of (vsock-test.c seq_stream).</summary>
    public static ulong SeqStream(long index, ulong seed) => unchecked((seed << 16) + (ulong)index);

    /// <summary>Message <paramref name="index"/> of a SEQPACKET exchange, filled.</summary>
    public static byte[] SeqMessage(long index, ulong seed)
    {
        var message = new byte[SeqLength(index, seed)];
        Fill(message, 0, SeqStream(index, seed));
        return message;
    }

    /// <summary>Deterministic pseudo-random bytes (<see cref="Random"/> seeded with <paramref name="seed"/>), different per seed.</summary>
    public static byte[] RandomBytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    /// <summary>The guest prints checksums as 16 lower-case hex digits.</summary>
    public static string Hex(ulong checksum) => checksum.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
}
