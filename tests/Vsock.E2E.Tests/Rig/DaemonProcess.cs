using System.Diagnostics;
using System.Text;

namespace Vsock.E2E.Tests.Rig;

/// <summary>
/// The daemon under test (<c>vhost-device-vsock</c>) as a child process: started with the reference's
/// command line, ready once its vhost-user socket files exist (QEMU must not start before that: a
/// frontend whose GET_FEATURES is not answered waits forever). Its stdout and stderr are kept as the log
/// that failure messages print. Dispose ends it by PID (SIGTERM, SIGKILL after a grace period) and
/// removes the socket files it was given.
/// </summary>
public sealed class DaemonProcess : IAsyncDisposable
{
    private static readonly TimeSpan TerminateGrace = TimeSpan.FromSeconds(3);

    private readonly Process process;
    private readonly StringBuilder log = new();
    private readonly IReadOnlyList<string> filesToRemove;
    private readonly Task exited;
    private int exitCode = -1;
    private int disposed;

    private DaemonProcess(Process process, string commandLine, IReadOnlyList<string> sockets, IReadOnlyList<string> filesToRemove)
    {
        this.process = process;
        Pid = process.Id;
        exited = WatchExitAsync();
        CommandLine = commandLine;
        Sockets = sockets;
        this.filesToRemove = filesToRemove;
    }

    public int Pid { get; }

    public string CommandLine { get; }

    /// <summary>The vhost-user sockets this daemon serves.</summary>
    public IReadOnlyList<string> Sockets { get; }

    /// <summary>True once the daemon has exited (also after dispose).</summary>
    public bool HasExited => exited.IsCompleted;

    /// <summary>The exit code, or -1 while it runs.</summary>
    public int ExitCode => Volatile.Read(ref exitCode);

    public string Log
    {
        get
        {
            lock (log)
            {
                return log.ToString();
            }
        }
    }

    /// <summary>
    /// Starts the daemon with <paramref name="arguments"/> (exactly as a user would type them after
    /// <c>vhost-device-vsock</c>) and waits for every path in <paramref name="sockets"/> to exist.
    /// <paramref name="alsoRemove"/> lists further files to delete on dispose (the UDS paths).
    /// </summary>
    public static async Task<DaemonProcess> StartAsync(
        IReadOnlyList<string> arguments, IReadOnlyList<string> sockets, IReadOnlyList<string>? alsoRemove = null, TimeSpan? timeout = null)
    {
        var (fileName, prefix) = DaemonLocator.Resolve();
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in prefix.Concat(arguments))
        {
            psi.ArgumentList.Add(arg);
        }
        var commandLine = "vhost-device-vsock " + string.Join(' ', arguments);
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {fileName}");
        var daemon = new DaemonProcess(process, commandLine, sockets, [.. sockets, .. alsoRemove ?? []]);
        process.OutputDataReceived += (_, e) => daemon.AppendLog(e.Data);
        process.ErrorDataReceived += (_, e) => daemon.AppendLog(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await daemon.WaitForSocketsAsync(timeout ?? TimeSpan.FromSeconds(30));
        }
        catch
        {
            await daemon.DisposeAsync();
            throw;
        }
        return daemon;
    }

    /// <summary>Waits until every vhost-user socket file exists (again, e.g. after a VMM disconnect).</summary>
    public async Task WaitForSocketsAsync(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!Sockets.All(Exists))
        {
            if (HasExited)
            {
                throw new InvalidOperationException(Describe($"the daemon exited with code {ExitCode} before creating its sockets"));
            }
            if (clock.Elapsed > timeout)
            {
                var missing = string.Join(", ", Sockets.Where(s => !Exists(s)));
                throw new TimeoutException(Describe($"no socket file after {timeout.TotalSeconds:0} s: {missing}"));
            }
            await Task.Delay(20);
        }
    }

    /// <summary>SIGKILL, by PID: the daemon crashes (its socket files stay behind); waits until it is gone.</summary>
    public async Task KillAsync(TimeSpan timeout)
    {
        ProcessSignals.KillNow(Pid);
        await exited.WaitAsync(timeout);
    }

    /// <summary>The log, headed by the command line and state, for failure messages.</summary>
    public string Describe(string? problem = null)
    {
        var state = HasExited ? $"exited with code {ExitCode}" : "running";
        var text = new StringBuilder();
        if (problem is not null)
        {
            text.Append("daemon: ").AppendLine(problem);
        }
        text.AppendLine($"---- daemon log (pid {Pid}, {state}): {CommandLine} ----")
            .AppendLine(Log)
            .AppendLine("---- end of daemon log ----");
        return text.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }
        if (!HasExited && ProcessSignals.Terminate(Pid))
        {
            try
            {
                await exited.WaitAsync(TerminateGrace);
            }
            catch (TimeoutException)
            {
                AppendLog($"[rig] no exit {TerminateGrace.TotalSeconds:0} s after SIGTERM: SIGKILL");
            }
        }
        try
        {
            if (!HasExited)
            {
                process.Kill(entireProcessTree: false);
            }
        }
        catch (InvalidOperationException)
        {
            // Exited between the check and the kill.
        }
        await exited;
        process.Dispose();
        foreach (var file in filesToRemove)
        {
            try
            {
                File.Delete(file);
            }
            catch (IOException)
            {
                // Best effort: the temp directory goes too.
            }
        }
    }

    // Path.Exists sees any directory entry, sockets included.
    private static bool Exists(string path) => Path.Exists(path);

    private async Task WatchExitAsync()
    {
        await process.WaitForExitAsync();
        Volatile.Write(ref exitCode, process.ExitCode);
    }

    private void AppendLog(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (log)
        {
            log.AppendLine(line);
        }
    }
}
