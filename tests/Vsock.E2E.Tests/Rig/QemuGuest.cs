using System.Diagnostics;
using System.Globalization;

namespace Vsock.E2E.Tests.Rig;

/// <summary>
/// One QEMU guest (TCG) booted from the test image. The serial console (QEMU's stdout) is collected
/// line by line; tests wait for marker lines. QEMU is ended by PID on dispose: SIGTERM, then SIGKILL
/// after a grace period; it is also killed when <see cref="QemuGuestOptions.Lifetime"/> runs out.
/// </summary>
public sealed class QemuGuest : IAsyncDisposable
{
    public const string QemuBinary = "qemu-system-x86_64";

    private static readonly TimeSpan TerminateGrace = TimeSpan.FromSeconds(2);

    private readonly Process process;
    private readonly GuestConsole console;
    private readonly Task pumps;
    private readonly Task exited;
    private readonly CancellationTokenSource lifetime;
    private readonly CancellationTokenRegistration lifetimeExpiry;
    private readonly SemaphoreSlim stdinGate = new(1, 1);
    private readonly Stopwatch sinceStart = Stopwatch.StartNew();
    private int nextStepId;
    private int disposed;

    private QemuGuest(QemuGuestOptions options, Process process)
    {
        Options = options;
        this.process = process;
        Pid = process.Id;
        exited = process.WaitForExitAsync();
        console = new GuestConsole(options.Name, options.FailFast, options.ExtraDiagnostics);
        pumps = PumpAsync();
        lifetime = new CancellationTokenSource(options.Lifetime);
        lifetimeExpiry = lifetime.Token.Register(() =>
        {
            if (!HasExited)
            {
                console.Append($"[rig] guest lifetime of {options.Lifetime.TotalSeconds:0} s expired: killing QEMU");
                Kill();
            }
        });
    }

    public QemuGuestOptions Options { get; }

    public int Pid { get; }

    public string Name => Options.Name;

    /// <summary>True once QEMU has exited (also after dispose).</summary>
    public bool HasExited => exited.IsCompleted;

    /// <summary>Time since QEMU was started.</summary>
    public TimeSpan Elapsed => sinceStart.Elapsed;

    public IReadOnlyList<string> ConsoleLines => console.Lines;

    public string ConsoleText => console.Text;

    public static QemuGuest Start(QemuGuestOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var psi = new ProcessStartInfo(QemuBinary)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in options.BuildArguments())
        {
            psi.ArgumentList.Add(arg);
        }
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {QemuBinary}");
        return new QemuGuest(options, process);
    }

    /// <summary>A failure message that names this guest and carries its console (and the extra diagnostics).</summary>
    public string Describe(string problem) => console.Describe(problem);

    /// <summary>An exception for <paramref name="problem"/> whose message carries the console.</summary>
    public GuestConsoleException Failure(string problem) => console.Failure(problem);

    /// <summary>
    /// Waits for a console line (earlier lines count). Unless <paramref name="failFast"/> is false, a
    /// "VSOCKTEST FAIL" line arriving meanwhile ends the wait with that failure.
    /// </summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> predicate, TimeSpan timeout, string? description = null, bool failFast = true) =>
        (await console.WaitAsync(predicate, 1, timeout, description ?? "a matching console line", failFast))[0];

    /// <summary>Waits until <paramref name="count"/> lines match, counting from the first console line.</summary>
    public Task<IReadOnlyList<string>> WaitForLinesAsync(
        Func<string, bool> predicate, int count, TimeSpan timeout, string? description = null) =>
        console.WaitAsync(predicate, count, timeout, description ?? $"{count} matching console lines");

    /// <summary>Waits for a marker line such as <c>VSOCKTEST RESULT send ...</c>.</summary>
    public async Task<GuestMarker> WaitForMarkerAsync(
        string kind, string? mode, TimeSpan timeout, Func<GuestMarker, bool>? where = null)
    {
        var what = $"marker '{kind}{(mode is null ? "" : " " + mode)}'";
        var line = await WaitForLineAsync(line => Matches(line, kind, mode, where), timeout, what);
        return GuestMarker.Parse(line);
    }

    public async Task<IReadOnlyList<GuestMarker>> WaitForMarkersAsync(
        string kind, string? mode, int count, TimeSpan timeout, Func<GuestMarker, bool>? where = null)
    {
        var what = $"{count} × marker '{kind}{(mode is null ? "" : " " + mode)}'";
        var lines = await WaitForLinesAsync(line => Matches(line, kind, mode, where), count, timeout, what);
        return [.. lines.Select(GuestMarker.Parse)];
    }

    /// <summary>Waits for <c>VSOCKTEST READY port</c> (the n-th one, counting from 1).</summary>
    public async Task<GuestMarker> WaitForListenerAsync(uint port, TimeSpan timeout, int occurrence = 1)
    {
        var text = port.ToString(CultureInfo.InvariantCulture);
        var ready = await WaitForMarkersAsync("READY", null, occurrence, timeout, m => m.Words.Count > 0 && m.Words[0] == text);
        return ready[^1];
    }

    /// <summary>
    /// Runs one step through the serial console (needs <see cref="QemuGuestOptions.Console"/>) and returns
    /// its exit status. Words may be separated by ',' or ' '. Background steps ("bg:...") return at once.
    /// </summary>
    public async Task<int> RunStepAsync(string step, TimeSpan timeout)
    {
        if (!Options.Console)
        {
            throw new InvalidOperationException("the guest was not started with Console = true");
        }
        if (step.Contains('\n', StringComparison.Ordinal))
        {
            throw new ArgumentException("one step per call", nameof(step));
        }
        await WaitForLineAsync(l => l == "VSOCKTEST CONSOLE READY", timeout, "the console command loop");
        var id = Interlocked.Increment(ref nextStepId);
        await stdinGate.WaitAsync();
        try
        {
            await process.StandardInput.WriteAsync($"@{id} {step}\n");
            await process.StandardInput.FlushAsync();
        }
        finally
        {
            stdinGate.Release();
        }
        // A failing step prints FAIL before its STEP line; its status is the answer here, not an exception.
        var idText = id.ToString(CultureInfo.InvariantCulture);
        var done = GuestMarker.Parse(await WaitForLineAsync(
            line => Matches(line, "STEP", null, m => m.Words.Count > 0 && m.Words[0] == idText), timeout, $"the end of step @{id} '{step}'", failFast: false));
        return int.Parse(done.Get("rc"), CultureInfo.InvariantCulture);
    }

    /// <summary>Waits for QEMU to exit by itself (the guest powered off) and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        try
        {
            await exited.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw console.Failure($"QEMU still running after {timeout.TotalSeconds:0.#} s");
        }
        await pumps;
        return process.ExitCode;
    }

    /// <summary>SIGKILL now, by PID (a VMM crash, as far as the daemon can tell).</summary>
    public void Kill()
    {
        if (HasExited || Volatile.Read(ref disposed) == 2)
        {
            return;
        }
        try
        {
            process.Kill(entireProcessTree: false);
        }
        catch (InvalidOperationException)
        {
            // Exited between the check and the kill.
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }
        await lifetimeExpiry.DisposeAsync();
        lifetime.Dispose();
        if (!HasExited && ProcessSignals.Terminate(Pid))
        {
            try
            {
                await exited.WaitAsync(TerminateGrace);
            }
            catch (TimeoutException)
            {
                Kill();
            }
        }
        Kill();
        await exited;
        await pumps;
        Volatile.Write(ref disposed, 2);
        process.Dispose();
        stdinGate.Dispose();
    }

    private static bool Matches(string line, string kind, string? mode, Func<GuestMarker, bool>? where)
    {
        var marker = GuestMarker.TryParse(line);
        return marker is not null && marker.Is(kind, mode) && (where is null || where(marker));
    }

    private async Task PumpAsync()
    {
        var stdout = PumpLinesAsync(process.StandardOutput, "");
        var stderr = PumpLinesAsync(process.StandardError, "[qemu stderr] ");
        await Task.WhenAll(stdout, stderr);
        await exited;
        console.Close($"QEMU exited with code {process.ExitCode} after {sinceStart.Elapsed.TotalSeconds:0.0} s");
    }

    private async Task PumpLinesAsync(StreamReader reader, string prefix)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            console.Append(prefix + line.TrimEnd('\r'));
        }
    }
}
