using System.Diagnostics;
using Vsock.Testing.Packets;

namespace Vsock.Testing;

// SEQPACKET applications inside the driver thread, for benchmarks (see DriverApplication): messages end at EOM,
// a message goes as RW packets of at most the packet limit within credit, EOM on the last. Each message read is
// acknowledged with a CREDIT_UPDATE, as Linux 6.1's SEQPACKET receive does.

internal sealed class MessageSinkApplication(long count) : DriverApplication
{
    private long _left = count;

    public override void OnData(GuestStream stream, ReadOnlySpan<byte> payload) => OnPacket(stream, payload, 0);

    public override void OnPacket(GuestStream stream, ReadOnlySpan<byte> payload, uint flags)
    {
        stream.ConsumedMessagePart(payload.Length, flags);
        if ((flags & VsockWire.SeqEom) != 0 && --_left == 0)
            Complete();
    }
}

internal sealed class MessageSourceApplication(long count, int size, int maxPacket) : DriverApplication
{
    private long _left = count;
    private int _leftInMessage;

    public override void OnData(GuestStream stream, ReadOnlySpan<byte> payload) => stream.ConsumedByApplication(payload.Length);

    public override void Pump(GuestStream stream)
    {
        while (_left > 0)
        {
            if (_leftInMessage == 0)
                _leftInMessage = size;
            var chunk = (int)Math.Min(Math.Min(_leftInMessage, stream.CreditForApplication), Math.Min(maxPacket, Pattern.Length));
            var flags = chunk == _leftInMessage ? VsockWire.SeqEom : 0;
            if (chunk == 0 || !stream.TryPostFromApplication(Pattern.AsSpan(0, chunk), flags))
                return; // credit or TX descriptors: the next driver pass tries again
            _leftInMessage -= chunk;
            if (_leftInMessage == 0)
                _left--;
        }
        Complete();
    }
}

/// <summary>Sends every packet back as it arrives, with its EOM/EOR: each message comes back whole.</summary>
internal sealed class MessageEchoApplication(long count) : DriverApplication
{
    private readonly Queue<(byte[] Payload, uint Flags)> _pending = new();
    private long _left = count;

    public override void OnData(GuestStream stream, ReadOnlySpan<byte> payload) => OnPacket(stream, payload, 0);

    public override void OnPacket(GuestStream stream, ReadOnlySpan<byte> payload, uint flags)
    {
        stream.ConsumedMessagePart(payload.Length, flags);
        var end = flags & (VsockWire.SeqEom | VsockWire.SeqEor);
        if (_pending.Count == 0 && stream.TryPostFromApplication(payload, end))
            Sent(end);
        else
            _pending.Enqueue((payload.ToArray(), end));
        Pump(stream);
    }

    public override void Pump(GuestStream stream)
    {
        while (_pending.TryPeek(out var next))
        {
            if (!stream.TryPostFromApplication(next.Payload, next.Flags))
                return;
            _pending.Dequeue();
            Sent(next.Flags);
        }
    }

    private void Sent(uint flags)
    {
        if ((flags & VsockWire.SeqEom) != 0 && --_left == 0)
            Complete();
    }
}

internal sealed class MessagePingPongApplication(int count, int size) : DriverApplication
{
    private int _sent;
    private long _start;
    private bool _requestPending;

    public long[] Times { get; } = new long[count];

    public override void OnData(GuestStream stream, ReadOnlySpan<byte> payload) => OnPacket(stream, payload, 0);

    public override void OnPacket(GuestStream stream, ReadOnlySpan<byte> payload, uint flags)
    {
        stream.ConsumedMessagePart(payload.Length, flags);
        if ((flags & VsockWire.SeqEom) == 0)
            return;
        Times[_sent - 1] = Stopwatch.GetTimestamp() - _start;
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
        if (!stream.TryPostFromApplication(Pattern.AsSpan(0, size), VsockWire.SeqEom))
            return;
        _requestPending = false;
        _sent++;
    }
}
