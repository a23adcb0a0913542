using System.Diagnostics;
using System.Net.Sockets;
using Vsock.Testing;
using Vsock.Testing.HostSide;

namespace Vsock.Bench;

/// <summary>Messages per second and MB/s of one SEQPACKET stream, with the CPU each side used.</summary>
internal readonly record struct MessageRate(double MessagesPerSecond, double BytesPerSecond, double DaemonCores, double DriverCores);

/// <summary>
/// SOCK_SEQPACKET through the daemon (issue 12), next to the stream figures: one stream each way with messages of a
/// fixed size (host application: a blocking unix SOCK_SEQPACKET socket; guest: an in-driver message sink or source),
/// 64-byte message round trips both ways (in-driver echo and ping-pong), and the same over a unix SOCK_SEQPACKET
/// socket pair as the reference.
/// </summary>
internal static class SeqpacketBench
{
    public static readonly int[] MessageSizes = [4096, 65536];

    /// <summary>Round trips of 64-byte messages, as the stream latency phase.</summary>
    public const int RoundTripSize = LatencyBench.MessageSize;

    private const int MaxMessage = 262144;

    public static async Task<MessageRate> ThroughputAsync(Session session, Direction direction, int size, long totalBytes)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var count = Math.Max(1, totalBytes / size);
        var (host, guest) = await OpenAsync(session, direction == Direction.HostToGuest, cts.Token);
        try
        {
            var meter = CpuMeter.Start(session.Daemon);
            var work = direction == Direction.HostToGuest
                ? Task.WhenAll(HostSockets.RunThread("seq-host-send", () => SendMessages(host, count, size)), guest.MessageSinkAsync(count))
                : Task.WhenAll(guest.MessageSourceAsync(count, size), HostSockets.RunThread("seq-host-receive", () => ReceiveMessages(host, count, size)));
            await work.WaitAsync(cts.Token);
            var cpu = meter.Stop();
            return new MessageRate(count / cpu.Seconds, count * (double)size / cpu.Seconds, cpu.Daemon, cpu.Driver);
        }
        finally
        {
            host.Dispose();
            await guest.CloseAsync();
        }
    }

    /// <summary>The host application sends a 64-byte message and waits for it back; the guest echoes in its driver.</summary>
    public static async Task<LatencyResult> HostClientAsync(Session session, int warmup, int samples)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var (host, guest) = await OpenAsync(session, hostInitiated: true, cts.Token);
        try
        {
            var total = warmup + samples;
            var echo = guest.MessageEchoAsync(total).WaitAsync(cts.Token);
            var times = new long[samples];
            var client = HostSockets.RunThread("seq-host-client", () => PingPong(host, total, warmup, times));
            await Task.WhenAll(echo, client);
            return LatencyBench.Summarise(times);
        }
        finally
        {
            host.Dispose();
            await guest.CloseAsync();
        }
    }

    /// <summary>The guest sends a 64-byte message (in its driver) and waits for it back; a host application echoes.</summary>
    public static async Task<LatencyResult> GuestClientAsync(Session session, int warmup, int samples)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var (host, guest) = await OpenAsync(session, hostInitiated: false, cts.Token);
        try
        {
            var total = warmup + samples;
            var echo = HostSockets.RunThread("seq-host-echo", () => Echo(host, total));
            var all = await guest.MessagePingPongAsync(total, RoundTripSize).WaitAsync(cts.Token);
            await echo;
            return LatencyBench.Summarise(all[warmup..]);
        }
        finally
        {
            host.Dispose();
            await guest.CloseAsync();
        }
    }

    /// <summary>The reference: the same messages over a unix SOCK_SEQPACKET socket pair, a writer thread and a reader thread.</summary>
    public static async Task<double> ReferenceThroughputAsync(int size, long totalBytes)
    {
        var count = Math.Max(1, totalBytes / size);
        var (a, b) = Pair();
        using (a)
        using (b)
        {
            var stopwatch = Stopwatch.StartNew();
            await Task.WhenAll(HostSockets.RunThread("seq-ref-send", () => SendMessages(a, count, size)),
                HostSockets.RunThread("seq-ref-receive", () => ReceiveMessages(b, count, size)));
            return count / stopwatch.Elapsed.TotalSeconds;
        }
    }

    /// <summary>The reference round trip: a unix SOCK_SEQPACKET socket pair, a client thread and an echo thread.</summary>
    public static async Task<LatencyResult> ReferenceRoundTripAsync(int warmup, int samples)
    {
        var (a, b) = Pair();
        using (a)
        using (b)
        {
            var total = warmup + samples;
            var times = new long[samples];
            await Task.WhenAll(HostSockets.RunThread("seq-ref-echo", () => Echo(b, total)),
                HostSockets.RunThread("seq-ref-client", () => PingPong(a, total, warmup, times)));
            return LatencyBench.Summarise(times);
        }
    }

    /// <summary>
    /// One SEQPACKET stream of the first VM: host-initiated through <c>uds-path_seqpacket</c> (CONNECT and OK
    /// messages) or guest-initiated to a SOCK_SEQPACKET listener on <c>uds-path_PORT</c>.
    /// </summary>
    private static async Task<(Socket Host, GuestStream Guest)> OpenAsync(Session session, bool hostInitiated, CancellationToken cancellationToken)
    {
        var port = session.NextPort();
        var uds = session.Vms[0].UdsPath;
        if (hostInitiated)
        {
            using var listener = session.Guest.Listen(port, Vsock.Device.Interop.SocketKind.Seqpacket);
            var host = await HostVsock.ConnectSeqpacketAsync(uds, port, cancellationToken);
            try
            {
                return (host, await listener.AcceptAsync(cancellationToken));
            }
            catch
            {
                host.Dispose();
                throw;
            }
        }
        using var hostListener = HostVsock.Listen(uds, port, Vsock.Device.Interop.SocketKind.Seqpacket, backlog: 1);
        var guest = await session.Guest.ConnectAsync(2, port, TimeSpan.FromSeconds(5), cancellationToken, Vsock.Device.Interop.SocketKind.Seqpacket);
        var accepted = await Task.Run(hostListener.Accept, cancellationToken);
        accepted.SendBufferSize = 1 << 20;
        return (accepted, guest);
    }

    private static (Socket, Socket) Pair()
    {
        var (a, b) = Vsock.Device.Interop.UnixSocket.Pair(Vsock.Device.Interop.SocketKind.Seqpacket);
        return (a.ToSocket(), b.ToSocket());
    }

    private static void SendMessages(Socket socket, long count, int size)
    {
        var message = TestPattern.RandomBytes(size, size);
        for (long i = 0; i < count; i++)
        {
            if (socket.Send(message) != size)
                throw new IOException("a SEQPACKET send took part of a message");
        }
    }

    private static void ReceiveMessages(Socket socket, long count, int size)
    {
        var buffer = new byte[MaxMessage];
        for (long i = 0; i < count; i++)
        {
            var n = socket.Receive(buffer);
            if (n != size)
                throw new IOException($"message {i}: {n} bytes, expected {size}");
        }
    }

    private static void PingPong(Socket socket, int total, int warmup, long[] times)
    {
        var request = TestPattern.RandomBytes(RoundTripSize, RoundTripSize);
        var reply = new byte[MaxMessage];
        for (var i = 0; i < total; i++)
        {
            var start = Stopwatch.GetTimestamp();
            socket.Send(request);
            if (socket.Receive(reply) != RoundTripSize)
                throw new IOException($"round trip {i}: the echo is not one {RoundTripSize}-byte message");
            if (i >= warmup)
                times[i - warmup] = Stopwatch.GetTimestamp() - start;
        }
    }

    private static void Echo(Socket socket, int total)
    {
        var message = new byte[MaxMessage];
        for (var i = 0; i < total; i++)
        {
            var n = socket.Receive(message);
            socket.Send(message, 0, n, SocketFlags.None);
        }
    }
}
