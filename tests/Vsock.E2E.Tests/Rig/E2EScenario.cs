using System.Text;

namespace Vsock.E2E.Tests.Rig;

/// <summary>A test failure whose message carries every guest console and daemon log of the scenario.</summary>
public sealed class E2EScenarioException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// Everything one end-to-end test starts: a fresh temp directory for sockets, daemons, guests and host
/// listeners. Disposal tears them down in reverse order (guests first, so no VMM is left talking to a dead
/// daemon) and deletes the directory. <see cref="RunAsync"/> turns any failure into one message with all
/// consoles and logs.
/// </summary>
public sealed class E2EScenario : IAsyncDisposable
{
    private readonly List<QemuGuest> guests = [];
    private readonly List<DaemonProcess> daemons = [];
    private readonly List<HostListener> listeners = [];
    private readonly object gate = new();

    private E2EScenario(string directory, GuestImagePaths image)
    {
        Directory = directory;
        Image = image;
    }

    /// <summary>Short on purpose: unix socket paths are limited to 107 bytes.</summary>
    public string Directory { get; }

    public GuestImagePaths Image { get; }

    public static async Task<E2EScenario> CreateAsync()
    {
        var image = await GuestImage.GetAsync();
        var directory = System.IO.Directory.CreateTempSubdirectory("vse2e-").FullName;
        return new E2EScenario(directory, image);
    }

    public string PathFor(string name) => System.IO.Path.Combine(Directory, name);

    public async Task<DaemonProcess> StartDaemonAsync(IReadOnlyList<string> arguments, IReadOnlyList<string> sockets, IReadOnlyList<string>? udsPaths = null)
    {
        var daemon = await DaemonProcess.StartAsync(DaemonLocator.Resolve(), arguments, sockets, udsPaths);
        lock (gate)
        {
            daemons.Add(daemon);
        }
        return daemon;
    }

    /// <summary>
    /// Boots a guest; with <paramref name="vhostSocket"/> it gets a vhost-user-vsock-pci device on that socket.
    /// <paramref name="lifetime"/> bounds how long QEMU may run (default <see cref="QemuGuestOptions.Lifetime"/>).
    /// </summary>
    public QemuGuest StartGuest(string name, string? vhostSocket, string run, bool console = false, TimeSpan? lifetime = null) =>
        StartGuest(name, options =>
        {
            options = options with { VhostUserSocket = vhostSocket, Run = run, Console = console };
            return lifetime is { } limit ? options with { Lifetime = limit } : options;
        });

    /// <summary>
    /// Boots a guest with options of the caller's choosing (host-run guests, for instance: <see cref="QemuGuestOptions.HostRoot"/>);
    /// <paramref name="configure"/> starts from this scenario's image, the name and the daemon logs as diagnostics.
    /// </summary>
    public QemuGuest StartGuest(string name, Func<QemuGuestOptions, QemuGuestOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var guest = QemuGuest.Start(configure(new QemuGuestOptions { Image = Image, Name = name, ExtraDiagnostics = DaemonLogs }));
        lock (gate)
        {
            guests.Add(guest);
        }
        return guest;
    }

    public HostListener Listen(string path, HostListener.Behaviour behaviour) => Listen(path, HostListener.Serve(behaviour));

    public HostListener Listen(string path, Func<System.Net.Sockets.Socket, int, CancellationToken, Task<HostConnection>> serve)
    {
        var listener = HostListener.Start(path, serve);
        lock (gate)
        {
            listeners.Add(listener);
        }
        return listener;
    }

    /// <summary>Runs the test body; any failure is rethrown with all consoles and daemon logs, which also go to the test output.</summary>
    public async Task RunAsync(ITestOutputHelper? output, Func<Task> body)
    {
        try
        {
            await body();
        }
        catch (Exception e)
        {
            var problem = e is GuestConsoleException g ? g.Problem : e.ToString();
            var message = $"{problem}\n{Diagnostics()}";
            output?.WriteLine(message);
            throw new E2EScenarioException(message, e);
        }
        output?.WriteLine(Diagnostics());
    }

    public string Diagnostics()
    {
        var text = new StringBuilder();
        foreach (var guest in Snapshot(guests))
        {
            text.AppendLine($"---- console of guest {guest.Name} (pid {guest.Pid}, {(guest.HasExited ? "exited" : "running")}) ----")
                .AppendLine(guest.ConsoleText)
                .AppendLine("---- end of console ----");
        }
        text.Append(DaemonLogs());
        foreach (var listener in Snapshot(listeners))
        {
            text.AppendLine($"host listener {listener.Path}: accepted {listener.Accepted}: {string.Join("; ", listener.Completed)}");
        }
        return text.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var guest in Snapshot(guests))
        {
            await guest.DisposeAsync();
        }
        foreach (var listener in Snapshot(listeners))
        {
            await listener.DisposeAsync();
        }
        foreach (var daemon in Snapshot(daemons))
        {
            await daemon.DisposeAsync();
        }
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort; it lives under the temp directory.
        }
    }

    private string DaemonLogs() => string.Concat(Snapshot(daemons).Select(d => d.Describe()));

    private List<T> Snapshot<T>(List<T> items)
    {
        lock (gate)
        {
            return [.. items];
        }
    }
}
