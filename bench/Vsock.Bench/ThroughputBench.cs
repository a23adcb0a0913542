using System.Diagnostics;
using System.Net.Sockets;
using Vsock.Testing;

namespace Vsock.Bench;

internal enum Direction
{
    HostToGuest,
    GuestToHost,
}

/// <summary>Bytes per second, and the CPU time of the daemon and of the driver per second of the run (1.0 = one core busy).</summary>
internal readonly record struct ThroughputResult(double BytesPerSecond, double DaemonCores, double DriverCores);

/// <summary>Bulk transfer through the daemon: host application ↔ daemon ↔ guest rings, N parallel streams.</summary>
internal static class ThroughputBench
{
    /// <summary>Moves <paramref name="totalBytes"/> (split over the streams): bytes per second and the CPU each side used.</summary>
    public static async Task<ThroughputResult> RunAsync(Session session, Direction direction, int writeSize, int streams, long totalBytes)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var perStream = totalBytes / streams;
        var (hosts, guests) = await OpenStreamsAsync(session, streams, cts.Token);
        try
        {
            var daemonCpu = session.Daemon.ReadCpuTime();
            var driverCpu = Process.GetCurrentProcess().TotalProcessorTime;
            var stopwatch = Stopwatch.StartNew();
            var work = new List<Task>();
            for (var i = 0; i < streams; i++)
            {
                var host = hosts[i];
                var guest = guests[i];
                if (direction == Direction.HostToGuest)
                {
                    work.Add(HostSockets.RunThread("host-send", () => HostSockets.SendBlocking(host, perStream, writeSize)));
                    work.Add(guest.SinkAsync(perStream).WaitAsync(cts.Token));
                }
                else
                {
                    work.Add(guest.SourceAsync(perStream, writeSize).WaitAsync(cts.Token));
                    work.Add(HostSockets.RunThread("host-receive", () => HostSockets.ReceiveBlocking(host, perStream)));
                }
            }
            await Task.WhenAll(work);
            stopwatch.Stop();
            var seconds = stopwatch.Elapsed.TotalSeconds;
            return new ThroughputResult(
                perStream * streams / seconds,
                (session.Daemon.ReadCpuTime() - daemonCpu).TotalSeconds / seconds,
                (Process.GetCurrentProcess().TotalProcessorTime - driverCpu).TotalSeconds / seconds);
        }
        finally
        {
            await CloseAsync(hosts, guests);
        }
    }

    /// <summary>Host-initiated streams (CONNECT/OK), each accepted by the guest.</summary>
    public static async Task<(Socket[] Hosts, GuestStream[] Guests)> OpenStreamsAsync(Session session, int count, CancellationToken cancellationToken)
    {
        var port = session.NextPort();
        using var listener = session.Guest.Listen(port);
        var hosts = new Socket[count];
        var guests = new GuestStream[count];
        for (var i = 0; i < count; i++)
        {
            var udsPath = session.Daemon.UdsPath;
            hosts[i] = await Task.Run(() => HostSockets.ConnectBlocking(udsPath, port), cancellationToken);
            guests[i] = await listener.AcceptAsync(cancellationToken);
        }
        return (hosts, guests);
    }

    public static async Task CloseAsync(Socket[] hosts, GuestStream[] guests)
    {
        foreach (var host in hosts)
            host.Dispose();
        await Task.WhenAll(guests.Select(g => g.CloseAsync().AsTask()));
    }
}
