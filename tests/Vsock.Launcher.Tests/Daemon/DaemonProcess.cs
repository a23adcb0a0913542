using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace Vsock.Launcher.Tests.Daemon;

/// <summary>
/// The daemon as its own process, as a user runs it: <c>dotnet vhost-device-vsock.dll ...</c> (the build next
/// to the tests) or a published executable. Stderr is collected line by line as it comes; the process is
/// killed on dispose if it is still running.
/// </summary>
internal sealed class DaemonProcess : IDisposable
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    public static readonly string LauncherDll = Path.Combine(AppContext.BaseDirectory, "vhost-device-vsock.dll");

    private readonly System.Diagnostics.Process _process;
    private readonly ConcurrentQueue<string> _stderr = new();
    private readonly Task<string> _stdout;
    private readonly SemaphoreSlim _lineArrived = new(0);

    private DaemonProcess(ProcessStartInfo start)
    {
        _process = System.Diagnostics.Process.Start(start) ?? throw new InvalidOperationException($"{start.FileName} did not start");
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
                return;
            _stderr.Enqueue(e.Data);
            _lineArrived.Release();
        };
        _process.BeginErrorReadLine();
        _stdout = _process.StandardOutput.ReadToEndAsync();
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public IReadOnlyList<string> StderrLines => [.. _stderr];

    public string Stderr => string.Join(Environment.NewLine, _stderr);

    /// <summary>Stdout once the process has exited.</summary>
    public string Stdout => _stdout.Result;

    /// <summary>The launcher built next to the tests, through the dotnet host that runs them.</summary>
    public static DaemonProcess StartDll(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } path && File.Exists(path) ? path : "dotnet";
        return new DaemonProcess(StartInfo(host, [LauncherDll, .. args], environment));
    }

    /// <summary>An executable of the daemon (a published single-file binary).</summary>
    public static DaemonProcess StartExecutable(string executable, IReadOnlyDictionary<string, string>? environment, params string[] args) =>
        new(StartInfo(executable, args, environment));

    private static ProcessStartInfo StartInfo(string fileName, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
            start.ArgumentList.Add(arg);

        // The machine's settings must not change what the daemon does or prints.
        start.Environment.Remove("RUST_LOG");
        start.Environment.Remove("VHOST_DEVICE_VSOCK_LOG");
        start.Environment.Remove("VSOCK_STATS_FILE");
        start.Environment.Remove("NOTIFY_SOCKET");
        foreach ((string name, string value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;
        return start;
    }

    /// <summary>Waits until a stderr line satisfies <paramref name="match"/>; false after <see cref="Patience"/> or if the process exits first.</summary>
    public bool WaitForLine(Func<string, bool> match)
    {
        DateTime deadline = DateTime.UtcNow + Patience;
        while (!_stderr.Any(match))
        {
            if (DateTime.UtcNow >= deadline)
                return false;
            if (_process.HasExited)
            {
                _process.WaitForExit(); // until the redirected streams are drained
                return _stderr.Any(match);
            }
            _lineArrived.Wait(TimeSpan.FromMilliseconds(200));
        }
        return true;
    }

    public bool WaitForLine(string contains) => WaitForLine(line => line.Contains(contains, StringComparison.Ordinal));

    public void Signal(string signal)
    {
        using var kill = System.Diagnostics.Process.Start("kill", [signal, _process.Id.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>Waits for the exit and for the redirected streams to drain; null if it did not exit in time.</summary>
    public int? WaitForExit()
    {
        if (!_process.WaitForExit(Patience))
            return null;
        _process.WaitForExit();
        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }
        _process.Dispose();
        _lineArrived.Dispose();
    }
}
