using Vsock.Testing.Packets;

namespace Vsock.Testing;

// SEQPACKET applications inside the driver thread, for benchmarks (see DriverApplication and MessageApplications).
public sealed partial class GuestStream
{
    /// <summary>Reads <paramref name="count"/> messages as they arrive (each acknowledged with a CREDIT_UPDATE); completes after the last.</summary>
    public Task MessageSinkAsync(long count) => StartMessages(new MessageSinkApplication(count));

    /// <summary>Sends <paramref name="count"/> messages of <paramref name="size"/> bytes as credit and TX descriptors allow.</summary>
    public Task MessageSourceAsync(long count, int size) => StartMessages(new MessageSourceApplication(count, size, MaxPayload()));

    /// <summary>Sends every message back as it arrives; completes after <paramref name="count"/> messages.</summary>
    public Task MessageEchoAsync(long count) => StartMessages(new MessageEchoApplication(count));

    /// <summary>Sends a <paramref name="size"/>-byte message, waits for one back, <paramref name="count"/> times; each round trip in ticks.</summary>
    public Task<long[]> MessagePingPongAsync(int count, int size)
    {
        var app = new MessagePingPongApplication(count, size);
        return StartMessages(app).ContinueWith(t =>
        {
            t.GetAwaiter().GetResult();
            return app.Times;
        }, TaskScheduler.Default);
    }

    private Task StartMessages(DriverApplication app)
    {
        ThrowIfNotSeqpacket();
        lock (_guest.Sync)
        {
            // What arrived before the application started goes to it first, message by message with its EOM (and
            // EOR); the lock is held throughout, so the driver's next packets come after.
            var early = new List<(byte[] Payload, uint Flags)>();
            while (_messages.TryDequeue(out var message))
            {
                var payload = new byte[message.Length];
                Receive.Read(payload);
                early.Add((payload, VsockWire.SeqEom | (message.EndOfRecord ? VsockWire.SeqEor : 0)));
            }
            if (_openMessage > 0)
            {
                var part = new byte[_openMessage];
                Receive.Read(part);
                early.Add((part, 0));
                _openMessage = 0;
            }
            var completion = Start(app);
            foreach (var (payload, flags) in early)
                app.OnPacket(this, payload, flags);
            _guest.FinishApplicationIfDone(this);
            return completion;
        }
    }

    /// <summary>An application read part of a message: fwd_cnt moves; at its end the peer gets a CREDIT_UPDATE (Linux 6.1).</summary>
    internal void ConsumedMessagePart(int n, uint flags)
    {
        FwdCnt += (uint)n;
        if ((flags & VsockWire.SeqEom) != 0 && !Done)
            _guest.SendStreamControl(this, VsockOp.CreditUpdate, 0);
    }
}
