using Vsock.Testing;

namespace Vsock.Bench;

internal static class GuestIo
{
    /// <summary>Reads exactly <paramref name="total"/> bytes (64 KiB reads, as a guest application would).</summary>
    public static async Task ReadAsync(GuestStream stream, long total, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        var left = total;
        while (left > 0)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(left, buffer.Length)), cancellationToken);
            if (n == 0)
                throw new EndOfStreamException($"guest EOF with {left} bytes still expected");
            left -= n;
        }
    }

    public static async Task WriteAsync(GuestStream stream, long total, int writeSize, CancellationToken cancellationToken)
    {
        var chunk = HostSockets.Pattern(writeSize);
        var left = total;
        while (left > 0)
        {
            var n = (int)Math.Min(left, writeSize);
            await stream.WriteAsync(chunk.AsMemory(0, n), cancellationToken);
            left -= n;
        }
    }

    public static async Task ReadExactlyAsync(GuestStream stream, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var done = 0;
        while (done < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer[done..], cancellationToken);
            if (n == 0)
                throw new EndOfStreamException();
            done += n;
        }
    }
}
