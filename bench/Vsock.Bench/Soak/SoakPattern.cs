namespace Vsock.Bench.Soak;

/// <summary>
/// The bytes a soak stream carries: byte <c>p</c> of stream <c>seed</c> is a mix of both, so a byte lost, doubled,
/// reordered or delivered to the wrong stream is seen, and neither end keeps a copy of the whole transfer.
/// </summary>
internal static class SoakPattern
{
    public static byte At(long position, int seed)
    {
        var x = (ulong)position * 0x9E3779B97F4A7C15UL ^ (ulong)seed * 0xBF58476D1CE4E5B9UL;
        return (byte)(x >> 56 ^ x >> 29);
    }

    public static void Fill(Span<byte> buffer, long position, int seed)
    {
        for (var i = 0; i < buffer.Length; i++)
            buffer[i] = At(position + i, seed);
    }

    /// <summary>The index of the first byte of <paramref name="data"/> that is not the pattern at <paramref name="position"/>; -1 if none.</summary>
    public static int FirstMismatch(ReadOnlySpan<byte> data, long position, int seed)
    {
        for (var i = 0; i < data.Length; i++)
        {
            if (data[i] != At(position + i, seed))
                return i;
        }
        return -1;
    }
}
