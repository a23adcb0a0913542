using System.Diagnostics;
using System.Globalization;

namespace Vsock.Bench;

/// <summary>
/// The load of the "other CPU busy" latency runs: this benchmark binary started once more with the hidden
/// argument <c>--hog CPU</c>. That process pins all its threads to the CPU and spins on its main thread
/// until it is killed by PID (<see cref="Dispose"/>) or its parent goes away. A process of its own, so
/// that it is no thread of the measured processes: the daemon, the driver and the reference run as they
/// would next to any other busy program, and the scheduler shares that CPU between it and them.
/// </summary>
internal sealed class CpuHog : IDisposable
{
    public const string Argument = "--hog";
    private const string ReadyLine = "spinning";

    private readonly Process _process;

    private CpuHog(Process process, int cpu)
    {
        _process = process;
        Cpu = cpu;
        CpusAllowed = File.ReadLines($"/proc/{process.Id}/status")
            .FirstOrDefault(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal))?["Cpus_allowed_list:".Length..].Trim() ?? "?";
    }

    public int Pid => _process.Id;

    public int Cpu { get; }

    /// <summary>The hog's Cpus_allowed_list once it spins (should be <see cref="Cpu"/>).</summary>
    public string CpusAllowed { get; }

    /// <summary>CPU time the hog has used so far (all its threads).</summary>
    public TimeSpan CpuTime => CpuClock.OfProcess(Pid);

    /// <summary>Starts the hog on <paramref name="cpu"/> and returns once it spins there.</summary>
    public static async Task<CpuHog> StartAsync(int cpu)
    {
        var host = Environment.ProcessPath ?? throw new InvalidOperationException("no process path to start the hog with");
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, UseShellExecute = false };
        // `dotnet Vsock.Bench.dll`: the host needs the assembly; an apphost (Vsock.Bench) does not.
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
            start.ArgumentList.Add(typeof(CpuHog).Assembly.Location);
        start.ArgumentList.Add(Argument);
        start.ArgumentList.Add(cpu.ToString(CultureInfo.InvariantCulture));
        var process = Process.Start(start) ?? throw new InvalidOperationException("the CPU hog did not start");
        try
        {
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            if (line != ReadyLine)
                throw new InvalidOperationException($"the CPU hog said '{line}' instead of '{ReadyLine}'");
            return new CpuHog(process, cpu);
        }
        catch
        {
            Stop(process);
            throw;
        }
    }

    /// <summary>The hog's side (<c>Vsock.Bench --hog CPU</c>): pin, say so, spin until the parent is gone.</summary>
    public static int Spin(string[] args)
    {
        if (args.Length != 2 || !int.TryParse(args[1], CultureInfo.InvariantCulture, out var cpu) || cpu < 0 || cpu >= Math.Min(CpuPlacement.CpuCount, 64))
        {
            Console.Error.WriteLine($"usage: Vsock.Bench {Argument} CPU (0 … {CpuPlacement.CpuCount - 1})");
            return 2;
        }
        CpuPlacement.Apply(Environment.ProcessId, 1UL << cpu);
        var parent = Native.getppid();
        Console.Out.WriteLine(ReadyLine);
        Console.Out.Flush();
        var state = 1UL;
        while (true)
        {
            for (var i = 0; i < 1_000_000; i++)
                state = state * 6364136223846793005UL + 1442695040888963407UL;
            Volatile.Write(ref _sink, state);
            // Reparented: the benchmark ended without killing us (a crash, Ctrl-C). Do not outlive it.
            if (Native.getppid() != parent)
                return 0;
        }
    }

    private static ulong _sink;

    /// <summary>Kills the hog by its PID and reaps it.</summary>
    public void Dispose() => Stop(_process);

    private static void Stop(Process process)
    {
        if (!process.HasExited)
        {
            try
            {
                Native.Kill(process.Id, Native.SigKill);
            }
            catch (IOException)
            {
                // it exited in between
            }
        }
        process.WaitForExit();
        process.Dispose();
    }
}
