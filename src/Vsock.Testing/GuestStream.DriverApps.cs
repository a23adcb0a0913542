using System.Diagnostics;
using Vsock.Testing.Packets;

namespace Vsock.Testing;

// Guest applications that run inside the driver thread, for benchmarks (see DriverApplication).
public sealed partial class GuestStream
{
    internal DriverApplication? App { get; private set; }

    /// <summary>
    /// From now on the driver consumes every byte that arrives, as a reader that is always waiting in
    /// recv() would (fwd_cnt and CREDIT_UPDATE as usual), without copying it anywhere; completes once
    /// <paramref name="total"/> bytes have arrived. Bytes already buffered count.
    /// </summary>
    public Task SinkAsync(long total) => Start(new SinkApplication(total));

    /// <summary>
    /// The driver sends <paramref name="total"/> bytes as writes of <paramref name="writeSize"/> bytes
    /// (one RW packet per write, split only by credit and the 64 KiB packet limit, as Linux does),
    /// whenever credit and TX descriptors allow; completes once the last byte is posted.
    /// </summary>
    public Task SourceAsync(long total, int writeSize) => Start(new SourceApplication(total, writeSize, MaxPayload()));

    /// <summary>The driver sends back every byte that arrives, at once; completes after <paramref name="total"/> bytes.</summary>
    public Task EchoAsync(long total) => Start(new EchoApplication(total));

    /// <summary>
    /// Request/response from the guest side: the driver sends <paramref name="size"/> bytes, waits for
    /// <paramref name="size"/> bytes back, and sends the next request at once, <paramref name="count"/>
    /// times. The result holds each round trip in <see cref="Stopwatch"/> ticks.
    /// </summary>
    public Task<long[]> PingPongAsync(int count, int size)
    {
        var app = new PingPongApplication(count, size);
        return Start(app).ContinueWith(t =>
        {
            t.GetAwaiter().GetResult();
            return app.Times;
        }, TaskScheduler.Default);
    }

    private int MaxPayload() => _guest.MaxPacketPayload;

    private Task Start(DriverApplication app)
    {
        lock (_guest.Sync)
        {
            _guest.ThrowIfUnusable();
            if (State != StreamState.Connected || Done)
                throw new GuestStreamClosedException($"stream {this} is not connected");
            if (App is not null)
                throw new InvalidOperationException($"stream {this} already runs a driver application");
            App = app;
            _guest.AddApplication(this);
            if (Receive.Count > 0)
            {
                // What arrived before the application started is handed to it first.
                var early = new byte[Receive.Count];
                var n = Receive.Read(early);
                app.OnData(this, early.AsSpan(0, n)); // the application accounts fwd_cnt for them
            }
            app.Pump(this);
            _guest.FinishApplicationIfDone(this);
            _guest.RearmTxForApplications();
            return app.Completion;
        }
    }

    /// <summary>The application took <paramref name="n"/> bytes: fwd_cnt moves and the peer hears of it as a reader's recv() would tell it.</summary>
    internal void ConsumedByApplication(int n)
    {
        FwdCnt += (uint)n;
        var delta = FwdCnt - LastFwdCnt;
        var freeSpace = (long)_guest.BufAlloc - delta;
        if (delta > 0 && freeSpace < _guest.CreditUpdateThreshold && !Done)
            _guest.SendStreamControl(this, VsockOp.CreditUpdate, 0);
    }

    /// <summary>Posts one RW packet of <paramref name="data"/> if credit and TX descriptors allow (under the guest lock).</summary>
    internal bool TryPostFromApplication(ReadOnlySpan<byte> data, uint flags = 0)
    {
        if (Done || State != StreamState.Connected || data.Length > Credit())
            return false;
        if (!_guest.TryPostStreamData(this, data, flags))
        {
            _guest.ApplicationWaitsForTx();
            return false;
        }
        TxCnt += (uint)data.Length;
        return true;
    }

    internal long CreditForApplication => Credit();

    internal void EndApplication()
    {
        App = null;
        _guest.RemoveApplication(this);
    }
}
