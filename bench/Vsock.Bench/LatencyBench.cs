using System.Diagnostics;
using Vsock.Testing.HostSide;

namespace Vsock.Bench;

internal readonly record struct LatencyResult(double P50Micros, double P99Micros, double MeanMicros, int Samples);

/// <summary>What else runs: nothing of ours (idle), or a <see cref="CpuHog"/> spinning on the last CPU (busy).</summary>
internal enum Load
{
    Idle,
    Busy,
}

/// <summary>The three round trips the latency phase measures.</summary>
internal enum RoundTrip
{
    /// <summary>A host application sends, the guest (in-driver) echoes.</summary>
    HostClient,
    /// <summary>The guest (in-driver) sends, a host application echoes.</summary>
    GuestClient,
    /// <summary>The physical reference: one unix socket pair, a client thread and an echo thread.</summary>
    Reference,
}

/// <summary>64-byte request/response round trips over one stream, one at a time.</summary>
internal static class LatencyBench
{
    public const int MessageSize = 64;

    /// <summary>The host application sends 64 bytes and waits for them back; the guest echoes.</summary>
    public static async Task<LatencyResult> HostClientAsync(Session session, int warmup, int samples)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var (hosts, guests) = await ThroughputBench.OpenStreamsAsync(session, session.Vms[0], 1, cts.Token);
        try
        {
            var guest = guests[0];
            var total = warmup + samples;
            var echo = guest.EchoAsync((long)total * MessageSize).WaitAsync(cts.Token);
            var times = new long[samples];
            var client = HostSockets.RunThread("host-client", () =>
            {
                var host = hosts[0];
                var request = TestPattern.RandomBytes(MessageSize, MessageSize);
                var reply = new byte[MessageSize];
                for (var i = 0; i < total; i++)
                {
                    var start = Stopwatch.GetTimestamp();
                    host.Send(request);
                    host.ReadExactly(reply);
                    if (i >= warmup)
                        times[i - warmup] = Stopwatch.GetTimestamp() - start;
                }
            });
            await Task.WhenAll(echo, client);
            return Summarise(times);
        }
        finally
        {
            await ThroughputBench.CloseAsync(hosts, guests);
        }
    }

    /// <summary>The guest application sends 64 bytes and waits for them back; a host application echoes.</summary>
    public static async Task<LatencyResult> GuestClientAsync(Session session, int warmup, int samples)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var port = session.NextPort();
        using var listener = HostVsock.Listen(session.Daemon.UdsPath, port, backlog: 512);
        var stream = await session.Guest.ConnectAsync(2, port, TimeSpan.FromSeconds(5), cts.Token);
        // A synchronous accept: the echo thread's blocking calls must not go through the runtime's socket thread.
        using var host = await Task.Run(listener.Accept, cts.Token);
        try
        {
            var total = warmup + samples;
            var echo = HostSockets.RunThread("host-echo", () =>
            {
                var message = new byte[MessageSize];
                for (var i = 0; i < total; i++)
                {
                    host.ReadExactly(message);
                    host.Send(message);
                }
            });
            var all = await stream.PingPongAsync(total, MessageSize).WaitAsync(cts.Token);
            await echo;
            return Summarise(all[warmup..]);
        }
        finally
        {
            host.Dispose();
            await stream.CloseAsync();
        }
    }

    /// <summary>The physical reference: the same ping-pong over one unix socket pair, an echo thread and a client thread.</summary>
    public static async Task<LatencyResult> ReferenceAsync(string directory, int warmup, int samples)
    {
        var path = Path.Combine(directory, "ref-latency.sock");
        File.Delete(path);
        using var listener = HostSockets.NewUnix();
        listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        using var client = HostSockets.NewUnix();
        client.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
        using var server = listener.Accept();
        var total = warmup + samples;
        var echo = HostSockets.RunThread("ref-echo", () =>
        {
            var message = new byte[MessageSize];
            for (var i = 0; i < total; i++)
            {
                server.ReadExactly(message);
                server.Send(message);
            }
        });
        var times = new long[samples];
        var run = HostSockets.RunThread("ref-client", () =>
        {
            var request = TestPattern.RandomBytes(MessageSize, MessageSize);
            var reply = new byte[MessageSize];
            for (var i = 0; i < total; i++)
            {
                var start = Stopwatch.GetTimestamp();
                client.Send(request);
                client.ReadExactly(reply);
                if (i >= warmup)
                    times[i - warmup] = Stopwatch.GetTimestamp() - start;
            }
        });
        await Task.WhenAll(echo, run);
        File.Delete(path);
        return Summarise(times);
    }

    public static LatencyResult Summarise(long[] ticks)
    {
        Array.Sort(ticks);
        double Micros(long t) => t * 1e6 / Stopwatch.Frequency;
        return new LatencyResult(
            Micros(ticks[ticks.Length / 2]),
            Micros(ticks[(int)Math.Min(ticks.Length - 1, Math.Ceiling(ticks.Length * 0.99) - 1)]),
            ticks.Average(t => Micros(t)),
            ticks.Length);
    }
}
