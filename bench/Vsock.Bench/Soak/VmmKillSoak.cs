using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Vsock.Testing;
using Vsock.Testing.HostSide;

namespace Vsock.Bench.Soak;

/// <summary>
/// A VMM killed with SIGKILL mid-transfer, over and over, against one daemon. Each cycle starts a child process
/// (this program with <see cref="ChildArgument"/>) that plays QEMU and its guest with the synthetic guest: it echoes
/// a host-initiated stream and sends on a guest-initiated one. Once both carried 256 KiB (checked byte for byte) the
/// child is killed by its PID; the daemon must close both host sockets, and the next child must attach to the same
/// vhost-user socket and work. The daemon's fds, RSS and managed heap are printed every <c>every</c> cycles.
/// </summary>
internal static class VmmKillSoak
{
    public const string ChildArgument = "--soak-vmm-child";
    private const uint EchoPort = 7000, GuestPort = 7001;
    private const long KillAfter = 256 * 1024;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public static async Task<int> RunAsync(string launcherDll, int cycles, int every, TextWriter report)
    {
        await using var daemon = await DaemonProcess.StartAsync(launcherDll, CpuPlacement.AllCpus, SoakRunner.Daemon);
        report.WriteLine($"daemon {daemon.Pid}: {string.Join(' ', DaemonProcess.Arguments(DaemonProcess.Layout("$D", 1), SoakRunner.Daemon))}");
        report.WriteLine($"each cycle: a new VMM process attaches, echoes one host stream and sends on one guest stream; SIGKILL after {KillAfter >> 10} KiB each way");
        report.WriteLine();
        report.WriteLine("| cycles | fds | RSS MiB | managed heap MiB | host sockets closed after the kill, ms (mean / max) | s per cycle |");
        report.WriteLine("|---|---|---|---|---|---|");
        var start = await SoakRunner.SampleAsync(daemon);
        var startFds = SoakRunner.FdTargets(daemon);
        report.WriteLine(Row(0, start, 0, 0, 0));

        using var hostListener = HostSockets.NewUnix();
        hostListener.Bind(new UnixDomainSocketEndPoint($"{daemon.UdsPath}_{GuestPort}"));
        hostListener.Listen(16);

        var failures = 0;
        var closeMs = new List<double>();
        var clock = Stopwatch.StartNew();
        for (var cycle = 1; cycle <= cycles; cycle++)
        {
            try
            {
                closeMs.Add(await CycleAsync(daemon, hostListener));
            }
            catch (Exception e) when (e is IOException or SocketException or TimeoutException or OperationCanceledException or InvalidDataException)
            {
                failures++;
                report.WriteLine($"cycle {cycle} failed: {e.GetType().Name}: {e.Message}");
                if (failures > 10)
                    return 1;
            }
            if (cycle % every == 0)
            {
                var sample = await SoakRunner.SampleAsync(daemon);
                report.WriteLine(Row(cycle, sample, closeMs.Count == 0 ? 0 : closeMs.Average(), closeMs.Count == 0 ? 0 : closeMs.Max(), clock.Elapsed.TotalSeconds / every));
                closeMs.Clear();
                clock.Restart();
            }
        }
        report.WriteLine();
        report.WriteLine($"{cycles} cycles, {failures} failed; the daemon (pid {daemon.Pid}) is {(daemon.HasExited ? "gone" : "still running")}");
        report.WriteLine($"fds open now that were not at the start: {SoakRunner.Difference(startFds, SoakRunner.FdTargets(daemon))}");
        report.WriteLine($"daemon log at warn: {daemon.Stderr.Count} lines");
        foreach (var line in SoakRunner.LogSummary(daemon).Take(8))
            report.WriteLine($"  {line}");
        return failures == 0 ? 0 : 1;
    }

    private static string Row(int cycles, DaemonSample s, double meanMs, double maxMs, double secondsPerCycle) =>
        string.Create(CultureInfo.InvariantCulture,
            $"| {cycles} | {s.Fds} | {s.RssBytes / 1048576.0:0.0} | {s.HeapBytes / 1048576.0:0.0} | {meanMs:0.0} / {maxMs:0.0} | {secondsPerCycle:0.00} |");

    /// <summary>One VMM's life; returns how long after its SIGKILL the daemon had closed both host sockets.</summary>
    private static async Task<double> CycleAsync(DaemonProcess daemon, Socket hostListener)
    {
        using var cts = new CancellationTokenSource(Patience);
        using var child = StartChild(daemon.Socket);
        try
        {
            var ready = await child.StandardOutput.ReadLineAsync(cts.Token);
            if (ready != "READY")
                throw new IOException($"the VMM process said '{ready}': {await child.StandardError.ReadToEndAsync(cts.Token)}");
            using var echo = await HostVsock.ConnectAsync(daemon.UdsPath, EchoPort, cts.Token);
            using var fromGuest = await hostListener.AcceptAsync(cts.Token);

            var sending = SendForeverAsync(echo, seed: 0, cts.Token);
            var echoed = new Progress();
            var received = new Progress();
            var readEcho = ReadUntilClosedAsync(echo, seed: 0, echoed, cts.Token);
            var readGuest = ReadUntilClosedAsync(fromGuest, seed: 1, received, cts.Token);
            while (echoed.Bytes < KillAfter || received.Bytes < KillAfter)
            {
                if (readEcho.IsCompleted || readGuest.IsCompleted)
                    throw new IOException($"a stream ended before the kill (echoed {echoed.Bytes}, received {received.Bytes})");
                await Task.Delay(5, cts.Token);
            }
            Native.Kill(child.Id, Native.SigKill);
            var killed = Stopwatch.StartNew();
            await Task.WhenAll(readEcho, readGuest).WaitAsync(cts.Token);
            var ms = killed.Elapsed.TotalMilliseconds;
            try
            {
                await sending;
            }
            catch (SocketException)
            {
                // EPIPE/ECONNRESET once the daemon closed the socket: expected
            }
            return ms;
        }
        finally
        {
            if (!child.HasExited)
                child.Kill();
            await child.WaitForExitAsync(CancellationToken.None);
        }
    }

    private sealed class Progress
    {
        public long Bytes;
    }

    private static Process StartChild(string socket)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(typeof(VmmKillSoak).Assembly.Location);
        start.ArgumentList.Add(ChildArgument);
        start.ArgumentList.Add(socket);
        return Process.Start(start) ?? throw new IOException("dotnet did not start");
    }

    private static async Task SendForeverAsync(Socket socket, int seed, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        for (long sent = 0; ; sent += buffer.Length)
        {
            SoakPattern.Fill(buffer, sent, seed);
            for (var off = 0; off < buffer.Length;)
                off += await socket.SendAsync(buffer.AsMemory(off), cancellationToken);
        }
    }

    /// <summary>Reads and checks the pattern until the daemon closes the socket (EOF or reset).</summary>
    private static async Task ReadUntilClosedAsync(Socket socket, int seed, Progress progress, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            int n;
            try
            {
                n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
            {
                return;
            }
            if (n == 0)
                return;
            if (SoakPattern.FirstMismatch(buffer.AsSpan(0, n), progress.Bytes, seed) is var bad and >= 0)
                throw new InvalidDataException($"byte {progress.Bytes + bad} of stream {seed} is wrong");
            Interlocked.Add(ref progress.Bytes, n);
        }
    }

    /// <summary>
    /// The child: QEMU and its guest, played by the synthetic guest. Attaches to <paramref name="args"/>[0] (retrying
    /// while the daemon still ends the previous VMM's session), listens on 7000 and echoes, connects to the host's
    /// 7001 and sends the pattern, prints READY, and runs until it is killed.
    /// </summary>
    public static async Task<int> ChildAsync(string[] args)
    {
        var deadline = DateTime.UtcNow + Patience;
        SyntheticGuest guest;
        while (true)
        {
            try
            {
                guest = SyntheticGuest.Connect(args[0], SyntheticGuestOptions.Default with { RecordReceived = false });
                break;
            }
            catch (Exception e) when (e is IOException or SocketException or TimeoutException && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }
        }
        using var listener = guest.Listen(EchoPort);
        var toHost = await guest.ConnectAsync(2, GuestPort, Patience);
        Console.Out.WriteLine("READY");
        Console.Out.Flush();
        var send = Task.Run(async () =>
        {
            var buffer = new byte[16 * 1024];
            for (long sent = 0; ; sent += buffer.Length)
            {
                SoakPattern.Fill(buffer, sent, 1);
                await toHost.WriteAsync(buffer);
            }
        });
        var stream = await listener.AcceptAsync();
        var echo = new byte[64 * 1024];
        while (true)
        {
            var n = await stream.ReadAsync(echo);
            if (n == 0)
                break;
            await stream.WriteAsync(echo.AsMemory(0, n));
        }
        await send;
        return 0;
    }
}
