using System.Diagnostics;
using System.Text;

namespace Vsock.Testing.HostSide;

/// <summary>
/// How to start the daemon: an executable (the published single-file <c>vhost-device-vsock</c>, or an installed one),
/// or the framework-dependent <c>vhost-device-vsock.dll</c> run by the <c>dotnet</c> host.
/// </summary>
public sealed record DaemonCommand(string FileName, IReadOnlyList<string> PrefixArguments)
{
    /// <summary>A path to an executable, or to a .dll that the dotnet host runs (the one running this process, as test hosts are told).</summary>
    public static DaemonCommand For(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"no daemon at {path}", path);
        return path.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)
            ? new DaemonCommand(DotnetHost(), [Path.GetFullPath(path)])
            : new DaemonCommand(Path.GetFullPath(path), []);
    }

    // The SDK tells test hosts which dotnet runs them; fall back to PATH.
    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
}

/// <summary>
/// The daemon as a child process, as a user runs it (a <see cref="DaemonCommand"/> and the reference's command line),
/// ready once its vhost-user socket files exist (a VMM must not start before that: a front end whose GET_FEATURES is
/// not answered waits forever). Its stdout and stderr are kept as the log that failure messages print. Dispose ends
/// it by PID (SIGTERM, SIGKILL after a grace period) and removes the socket files it was given.
/// </summary>
public sealed class DaemonProcess : IAsyncDisposable
{
    private static readonly TimeSpan TerminateGrace = TimeSpan.FromSeconds(3);

    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private readonly IReadOnlyList<string> _filesToRemove;
    private readonly Task _exited;
    private int _exitCode = -1;
    private int _disposed;

    private DaemonProcess(Process process, string commandLine, IReadOnlyList<string> sockets, IReadOnlyList<string> filesToRemove)
    {
        _process = process;
        Pid = process.Id;
        _exited = WatchExitAsync();
        CommandLine = commandLine;
        Sockets = sockets;
        _filesToRemove = filesToRemove;
    }

    public int Pid { get; }

    public string CommandLine { get; }

    /// <summary>The vhost-user sockets this daemon serves.</summary>
    public IReadOnlyList<string> Sockets { get; }

    /// <summary>True once the daemon has exited (also after dispose).</summary>
    public bool HasExited => _exited.IsCompleted;

    /// <summary>The exit code, or -1 while it runs.</summary>
    public int ExitCode => Volatile.Read(ref _exitCode);

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>
    /// Starts <paramref name="command"/> with <paramref name="arguments"/> (exactly as a user would type them after
    /// <c>vhost-device-vsock</c>) and waits for every path in <paramref name="sockets"/> to exist.
    /// <paramref name="alsoRemove"/> lists further files to delete on dispose (the UDS paths); <paramref name="environment"/>
    /// sets variables for the daemon on top of this process's own.
    /// </summary>
    public static async Task<DaemonProcess> StartAsync(DaemonCommand command,
        IReadOnlyList<string> arguments, IReadOnlyList<string> sockets, IReadOnlyList<string>? alsoRemove = null, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(command.FileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in command.PrefixArguments.Concat(arguments))
            psi.ArgumentList.Add(arg);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            psi.Environment[name] = value;
        var commandLine = "vhost-device-vsock " + string.Join(' ', arguments);
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {command.FileName}");
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
        await _exited.WaitAsync(timeout);
    }

    /// <summary>The log, headed by the command line and state, for failure messages.</summary>
    public string Describe(string? problem = null)
    {
        var state = HasExited ? $"exited with code {ExitCode}" : "running";
        var text = new StringBuilder();
        if (problem is not null)
            text.Append("daemon: ").AppendLine(problem);
        text.AppendLine($"---- daemon log (pid {Pid}, {state}): {CommandLine} ----")
            .AppendLine(Log)
            .AppendLine("---- end of daemon log ----");
        return text.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        if (!HasExited && ProcessSignals.Terminate(Pid))
        {
            try
            {
                await _exited.WaitAsync(TerminateGrace);
            }
            catch (TimeoutException)
            {
                AppendLog($"[rig] no exit {TerminateGrace.TotalSeconds:0} s after SIGTERM: SIGKILL");
            }
        }
        try
        {
            if (!HasExited)
                _process.Kill(entireProcessTree: false);
        }
        catch (InvalidOperationException)
        {
            // Exited between the check and the kill.
        }
        await _exited;
        _process.Dispose();
        foreach (var file in _filesToRemove)
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
        await _process.WaitForExitAsync();
        Volatile.Write(ref _exitCode, _process.ExitCode);
    }

    private void AppendLog(string? line)
    {
        if (line is null)
            return;
        lock (_log)
        {
            _log.AppendLine(line);
        }
    }
}
