using Vsock.E2E.Tests.Rig;

namespace Vsock.E2E.Tests;

/// <summary>
/// One guest boot without the daemon: the guest program talks to itself over vsock_loopback (CID 1).
/// This validates the image, /init, the modules and every mode of the guest program; the tests of
/// <see cref="LoopbackGuestTests"/> each check one part of the finished console.
/// </summary>
public sealed class LoopbackGuestFixture : IAsyncLifetime
{
    public const long EchoBytes = 1048576;

    public static readonly string Script = string.Join(';',
        "cid",
        "pattern,1048576,1",
        "pattern,1000,9",
        // One echo listener for three clients: one big transfer, then two concurrent ones.
        "bg:listen-echo,5000,3", "wait-ready,5000",
        $"connect,1,5000,{EchoBytes}",
        "connect-many,1,5000,2,65536,7",
        "bg:sink,5001", "wait-ready,5001",
        $"send,1,5001,{EchoBytes},3",
        "connect-refused,1,5999",
        // The listener drops its first connection after 4 KiB, then echoes the next one.
        "bg:listen-close-mid,5002,4096,1", "wait-ready,5002",
        "connect-close-mid,1,5002,1048576",
        "connect,1,5002,65536,4",
        "bg:listen-echo,5003,1", "wait-ready,5003",
        "latency,1,5003,200",
        "bg:sink,5004", "wait-ready,5004",
        "throughput,1,5004,4194304",
        "bg:sink,5005", "wait-ready,5005",
        "message,1,5005,hello,from,the,guest");

    private E2EScenario? scenario;

    public QemuGuest Guest { get; private set; } = null!;

    public TimeSpan TimeToBooted { get; private set; }

    public TimeSpan TimeToDone { get; private set; }

    public Exception? StartupFailure { get; private set; }

    public string Diagnostics => scenario?.Diagnostics() ?? "";

    public async Task InitializeAsync()
    {
        scenario = await E2EScenario.CreateAsync();
        Guest = scenario.StartGuest("loopback", vhostSocket: null, Script);
        try
        {
            await Guest.WaitForMarkerAsync("BOOTED", null, E2ETimeouts.Boot);
            TimeToBooted = Guest.Elapsed;
            await Guest.WaitForMarkerAsync("DONE", null, E2ETimeouts.Transfer);
            TimeToDone = Guest.Elapsed;
            await Guest.WaitForExitAsync(E2ETimeouts.Step);
        }
        catch (Exception e)
        {
            // Each test reports this with the console rather than xunit failing the whole class opaquely.
            StartupFailure = e;
        }
    }

    public async Task DisposeAsync()
    {
        if (scenario is not null)
        {
            await scenario.DisposeAsync();
        }
    }

    /// <summary>The finished console's markers of one kind (and mode).</summary>
    public IReadOnlyList<GuestMarker> Markers(string kind, string? mode = null)
    {
        if (StartupFailure is not null)
        {
            throw new E2EScenarioException($"the loopback guest did not finish: {StartupFailure.Message}\n{Diagnostics}", StartupFailure);
        }
        return [.. Guest.ConsoleLines.Select(GuestMarker.TryParse).OfType<GuestMarker>().Where(m => m.Is(kind, mode))];
    }

    public GuestMarker Single(string kind, string? mode, Func<GuestMarker, bool>? where = null)
    {
        var found = Markers(kind, mode).Where(m => where is null || where(m)).ToList();
        return found.Count == 1
            ? found[0]
            : throw new E2EScenarioException($"expected one '{kind} {mode}' marker, found {found.Count}\n{Diagnostics}", new InvalidOperationException());
    }
}
