using System.Diagnostics;

namespace Vsock.Testing;

/// <summary>
/// A guest application that runs inside the synthetic guest's driver thread, under its lock: it sees
/// RW payloads as they are parsed from the RX ring and posts TX packets from there. It stands for an
/// application on a fast guest (another vCPU, always waiting in recv/send), so that a benchmark measures
/// the daemon rather than the hand-offs between the driver thread and application tasks, which a real
/// guest does not have either (its driver and its application are on different vCPUs). The stream's
/// protocol is unchanged: credit, fwd_cnt and CREDIT_UPDATE follow the same rules as <see cref="GuestStream"/>.
/// </summary>
internal abstract class DriverApplication
{
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Completion => _completion.Task;

    public bool IsDone => _completion.Task.IsCompleted;

    /// <summary>RW payload for the stream; the application consumes all of it (and calls <see cref="GuestStream.ConsumedByApplication"/>).</summary>
    public abstract void OnData(GuestStream stream, ReadOnlySpan<byte> payload);

    /// <summary>An RW packet with its flags (SEQPACKET applications look at EOM and EOR); by default just its payload.</summary>
    public virtual void OnPacket(GuestStream stream, ReadOnlySpan<byte> payload, uint flags) => OnData(stream, payload);

    /// <summary>Called after each driver pass (descriptors reclaimed, credit updated): post what can be posted.</summary>
    public virtual void Pump(GuestStream stream)
    {
    }

    /// <summary>The stream ended (reset, closed, guest disposed) before the application finished.</summary>
    public void Fail(string why) => _completion.TrySetException(new GuestStreamClosedException(why));

    protected void Complete() => _completion.TrySetResult();

    protected static readonly byte[] Pattern = CreatePattern();

    private static byte[] CreatePattern()
    {
        var pattern = new byte[64 * 1024];
        for (var i = 0; i < pattern.Length; i++)
            pattern[i] = (byte)(i * 31 + 7);
        return pattern;
    }
}

internal sealed class SinkApplication(long total) : DriverApplication
{
    private long _left = total;

    public override void OnData(GuestStream stream, ReadOnlySpan<byte> payload)
    {
        stream.ConsumedByApplication(payload.Length);
        _left -= payload.Length;
        if (_left <= 0)
            Complete();
    }

    public override void Pump(GuestStream stream)
    {
        if (_left <= 0)
            Complete();
    }
}

internal sealed class SourceApplication(long total, int writeSize, int maxPacket) : DriverApplication
{
    private long _left = total;
    private int _leftInWrite;

    public override void OnData(GuestStream stream, ReadOnlySpan<byte> payload) => stream.ConsumedByApplication(payload.Length);

    public override void Pump(GuestStream stream)
    {
        while (_left > 0)
        {
            if (_leftInWrite == 0)
                _leftInWrite = (int)Math.Min(writeSize, _left);
            var chunk = (int)Math.Min(Math.Min(_leftInWrite, stream.CreditForApplication), Math.Min(maxPacket, Pattern.Length));
            if (chunk == 0 || !stream.TryPostFromApplication(Pattern.AsSpan(0, chunk)))
                return; // credit or TX descriptors: the next driver pass tries again
            _leftInWrite -= chunk;
            _left -= chunk;
        }
        Complete();
    }
}

internal sealed class EchoApplication(long total) : DriverApplication
{
    private readonly Queue<byte> _pending = new();
    private long _left = total;

    public override void OnData(GuestStream stream, ReadOnlySpan<byte> payload)
    {
        stream.ConsumedByApplication(payload.Length);
        if (_pending.Count == 0 && stream.TryPostFromApplication(payload))
            _left -= payload.Length;
        else
            foreach (var b in payload)
                _pending.Enqueue(b);
        Pump(stream);
    }

    public override void Pump(GuestStream stream)
    {
        while (_pending.Count > 0)
        {
            var chunk = new byte[Math.Min(_pending.Count, 4096)];
            var i = 0;
            foreach (var b in _pending)
            {
                if (i == chunk.Length)
                    break;
                chunk[i++] = b;
            }
            if (!stream.TryPostFromApplication(chunk))
                return;
            for (var k = 0; k < chunk.Length; k++)
                _pending.Dequeue();
            _left -= chunk.Length;
        }
        if (_left <= 0)
            Complete();
    }
}

internal sealed class PingPongApplication(int count, int size) : DriverApplication
{
    private int _sent;
    private int _received;
    private long _start;
    private bool _requestPending;

    public long[] Times { get; } = new long[count];

    public override void OnData(GuestStream stream, ReadOnlySpan<byte> payload)
    {
        stream.ConsumedByApplication(payload.Length);
        _received += payload.Length;
        if (_received < size)
            return;
        Times[_sent - 1] = Stopwatch.GetTimestamp() - _start;
        _received -= size;
        if (_sent == count)
            Complete();
        else
            _requestPending = true;
        Pump(stream);
    }

    public override void Pump(GuestStream stream)
    {
        if (_sent == 0)
            _requestPending = true;
        if (!_requestPending || IsDone)
            return;
        _start = Stopwatch.GetTimestamp();
        if (!stream.TryPostFromApplication(Pattern.AsSpan(0, size)))
            return;
        _requestPending = false;
        _sent++;
    }
}
