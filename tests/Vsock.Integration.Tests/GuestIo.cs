using Vsock.Testing;

namespace Vsock.Integration.Tests;

public static class GuestIo
{
    public static async Task<byte[]> ReadToEndAsync(GuestStream stream, CancellationToken cancellationToken)
    {
        var all = new MemoryStream();
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var n = await stream.ReadAsync(buffer, cancellationToken);
            if (n == 0)
                return all.ToArray();
            all.Write(buffer, 0, n);
        }
    }

    public static async Task<byte[]> ReadExactlyAsync(GuestStream stream, int count, CancellationToken cancellationToken)
    {
        var buffer = new byte[count];
        var done = 0;
        while (done < count)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(done), cancellationToken);
            if (n == 0)
                throw new EndOfStreamException($"EOF after {done} of {count} bytes");
            done += n;
        }
        return buffer;
    }

    /// <summary>Deterministic pseudo-random bytes, different per seed.</summary>
    public static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }
}
