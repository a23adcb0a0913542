using System.Buffers;

namespace Vsock.Device.Connections;

/// <summary>
/// Where the stream paths get their byte arrays: a host stream's TX buffer storage (rented once, the first time its
/// socket refuses bytes) and a sibling packet's payload for the hop between two VMs' threads. It is
/// <see cref="ArrayPool{T}.Shared"/> with a count of rents, so a test can show that host streams in steady state rent
/// nothing per packet (issue 10: one copy each way, no pooled buffer per packet). The count costs one interlocked
/// increment per rent, and rents are rare on the host paths by design.
/// </summary>
public static class PayloadPool
{
    private static long s_rents;

    /// <summary>Arrays rented since the process started (all VMs).</summary>
    public static long Rents => Interlocked.Read(ref s_rents);

    public static byte[] Rent(int minimumLength)
    {
        Interlocked.Increment(ref s_rents);
        return ArrayPool<byte>.Shared.Rent(minimumLength);
    }

    public static void Return(byte[] array) => ArrayPool<byte>.Shared.Return(array);
}
