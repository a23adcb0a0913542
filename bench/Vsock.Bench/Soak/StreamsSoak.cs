using System.Diagnostics;
using System.Net.Sockets;
using Vsock.Testing;
using Vsock.Testing.HostSide;

namespace Vsock.Bench.Soak;

/// <summary>
/// Many concurrent streams, each carrying <c>bytes</c> both ways at once through the daemon (a process) and the
/// synthetic guest, every byte checked against <see cref="SoakPattern"/>: half host-initiated (CONNECT on
/// uds-path, a guest listener), half guest-initiated (the guest connects to uds-path_PORT). The daemon's fds, RSS
/// and managed heap are read idle, with every stream open, and after they all closed.
/// </summary>
internal static class StreamsSoak
{
    private const int Chunk = 64 * 1024;

    public static async Task<int> RunAsync(string launcherDll, int count, long bytes, int rounds, TextWriter report)
    {
        await using var daemon = await DaemonProcess.StartAsync(launcherDll, CpuPlacement.AllCpus, SoakRunner.Daemon);
        var start = await SoakRunner.SampleAsync(daemon);
        report.WriteLine($"daemon {daemon.Pid}: {string.Join(' ', DaemonProcess.Arguments(DaemonProcess.Layout("$D", 1), SoakRunner.Daemon))}");
        report.WriteLine();
        report.WriteLine("| when | fds | RSS MiB | managed heap MiB |");
        report.WriteLine("|---|---|---|---|");
        report.WriteLine(start.Row("started, no VMM"));

        var outcomes = new List<string>();
        var failed = false;
        var guestOptions = SyntheticGuestOptions.Default with { RecordReceived = false, MemorySize = 128L << 20 };
        await using (var guest = SyntheticGuest.Connect(daemon.Socket, guestOptions))
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(10 * rounds));
            report.WriteLine((await SoakRunner.SampleAsync(daemon)).Row("VMM connected, no stream"));

            const uint HostPort = 7000, GuestPort = 7001;
            using var hostListener = HostSockets.NewUnix();
            hostListener.Bind(new UnixDomainSocketEndPoint($"{daemon.UdsPath}_{GuestPort}"));
            hostListener.Listen(count);
            using var guestListener = guest.Listen(HostPort);

            for (var round = 1; round <= rounds; round++)
            {
                var hostInitiated = count / 2;
                var pairs = new (Socket Host, GuestStream Guest)[count];
                var opening = Stopwatch.StartNew();
                // One at a time, so each host end is paired with its own guest end.
                for (var n = 0; n < count; n++)
                {
                    if (n < hostInitiated)
                    {
                        var host = await HostVsock.ConnectAsync(daemon.UdsPath, HostPort, cts.Token);
                        pairs[n] = (host, await guestListener.AcceptAsync(cts.Token));
                    }
                    else
                    {
                        var stream = await guest.ConnectAsync(2, GuestPort, TimeSpan.FromSeconds(30), cts.Token);
                        pairs[n] = (await hostListener.AcceptAsync(cts.Token), stream);
                    }
                }
                report.WriteLine((await SoakRunner.SampleAsync(daemon)).Row($"round {round}: {count} streams open ({opening.Elapsed.TotalSeconds:0.0} s to open)"));

                var clock = Stopwatch.StartNew();
                var results = await Task.WhenAll(pairs.Select((p, i) => TransferAsync(p.Host, p.Guest, i, bytes, cts.Token)));
                var seconds = clock.Elapsed.TotalSeconds;
                var failures = results.Where(r => r is not null).ToList();
                foreach (var (host, _) in pairs)
                    host.Dispose();
                await Task.Delay(TimeSpan.FromSeconds(2));
                report.WriteLine((await SoakRunner.SampleAsync(daemon)).Row($"round {round}: transfers done, all streams closed, 2 s later"));
                outcomes.Add($"round {round}: {count} streams x {bytes >> 20} MiB each way ({hostInitiated} host-initiated, {count - hostInitiated} " +
                             $"guest-initiated): {2.0 * count * bytes / (1 << 20):0} MiB in {seconds:0.0} s; {count - failures.Count} streams every byte right, {failures.Count} failed");
                outcomes.AddRange(failures.Take(10).Select(f => $"  {f}"));
                failed |= failures.Count > 0;
            }
            if (guest.DriverFault is { } fault)
                outcomes.Add($"guest driver fault: {fault}");
            failed |= guest.DriverFault is not null;
        }
        await Task.Delay(TimeSpan.FromSeconds(1));
        report.WriteLine((await SoakRunner.SampleAsync(daemon)).Row("VMM gone, 1 s later"));
        report.WriteLine();
        foreach (var line in outcomes)
            report.WriteLine(line);
        return failed ? 1 : 0;
    }

    /// <summary>
    /// Both ends send <paramref name="bytes"/> and shut their write side, and read to EOF; the host end sends stream
    /// <c>2i</c>'s pattern, the guest end <c>2i+1</c>'s. Returns null when every byte arrived as sent.
    /// </summary>
    private static async Task<string?> TransferAsync(Socket host, GuestStream guest, int index, long bytes, CancellationToken cancellationToken)
    {
        try
        {
            var results = await Task.WhenAll(
                HostSendAsync(host, 2 * index, bytes, cancellationToken),
                GuestSendAsync(guest, 2 * index + 1, bytes, cancellationToken),
                HostReceiveAsync(host, 2 * index + 1, bytes, cancellationToken),
                GuestReceiveAsync(guest, 2 * index, bytes, cancellationToken));
            await guest.CloseAsync();
            var errors = results.Where(r => r is not null).ToList();
            return errors.Count == 0 ? null : $"stream {index}: {string.Join("; ", errors)}";
        }
        catch (Exception e) when (e is SocketException or GuestStreamClosedException or OperationCanceledException or IOException)
        {
            return $"stream {index}: {e.GetType().Name}: {e.Message}";
        }
    }

    private static async Task<string?> HostSendAsync(Socket host, int seed, long bytes, CancellationToken cancellationToken)
    {
        var buffer = new byte[Chunk];
        for (long sent = 0; sent < bytes;)
        {
            var n = (int)Math.Min(Chunk, bytes - sent);
            SoakPattern.Fill(buffer.AsSpan(0, n), sent, seed);
            for (var off = 0; off < n;)
                off += await host.SendAsync(buffer.AsMemory(off, n - off), cancellationToken);
            sent += n;
        }
        host.Shutdown(SocketShutdown.Send);
        return null;
    }

    private static async Task<string?> GuestSendAsync(GuestStream guest, int seed, long bytes, CancellationToken cancellationToken)
    {
        var buffer = new byte[Chunk];
        for (long sent = 0; sent < bytes;)
        {
            var n = (int)Math.Min(Chunk, bytes - sent);
            SoakPattern.Fill(buffer.AsSpan(0, n), sent, seed);
            await guest.WriteAsync(buffer.AsMemory(0, n), cancellationToken);
            sent += n;
        }
        guest.ShutdownWrite();
        return null;
    }

    private static async Task<string?> HostReceiveAsync(Socket host, int seed, long bytes, CancellationToken cancellationToken)
    {
        var buffer = new byte[Chunk];
        long got = 0;
        while (true)
        {
            var n = await host.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (n == 0)
                return got == bytes ? null : $"host end got {got} of {bytes} bytes";
            if (SoakPattern.FirstMismatch(buffer.AsSpan(0, n), got, seed) is var bad and >= 0)
                return $"host end: byte {got + bad} is wrong";
            got += n;
        }
    }

    private static async Task<string?> GuestReceiveAsync(GuestStream guest, int seed, long bytes, CancellationToken cancellationToken)
    {
        var buffer = new byte[Chunk];
        long got = 0;
        while (true)
        {
            var n = await guest.ReadAsync(buffer, cancellationToken);
            if (n == 0)
                return got == bytes ? null : $"guest end got {got} of {bytes} bytes";
            if (SoakPattern.FirstMismatch(buffer.AsSpan(0, n), got, seed) is var bad and >= 0)
                return $"guest end: byte {got + bad} is wrong";
            got += n;
        }
    }
}
