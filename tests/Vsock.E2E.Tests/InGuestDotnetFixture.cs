using Vsock.E2E.Tests.Rig;

namespace Vsock.E2E.Tests;

/// <summary>
/// One host-run guest boot (<see cref="QemuGuestOptions.HostRoot"/>) in which the host's own dotnet runs
/// tests/Vsock.InGuest on the guest kernel, against a real AF_VSOCK (vsock_loopback, CID 1):
/// <c>forward-selftest</c> (a <c>host,...</c> step of VT_RUN: the daemon's AF_VSOCK backend in process, driven by
/// a synthetic guest), then <c>vsock-selftest</c> (VT_HOSTCMD: Vsock.Device.Interop.Vsock alone), then a probe
/// script (VT_HOSTCMD_FILE) that checks the environment host commands get. The tests of
/// <see cref="InGuestDotnetTests"/> each check one part of the finished console.
/// </summary>
public sealed class InGuestDotnetFixture : IAsyncLifetime
{
    public const long Bytes = 1048576;
    private const string BytesText = "1048576";

    private E2EScenario? scenario;

    public QemuGuest Guest { get; private set; } = null!;

    /// <summary>Written to a file under the host's /tmp, which the probe must read back through /run/host-tmp.</summary>
    public string Token { get; } = Guid.NewGuid().ToString("N");

    public string ScenarioDirectory => scenario?.Directory ?? "";

    public TimeSpan TimeToHostRoot { get; private set; }

    public TimeSpan TimeToDone { get; private set; }

    public TimeSpan TimeToExit { get; private set; }

    public Exception? StartupFailure { get; private set; }

    public string Diagnostics => scenario?.Diagnostics() ?? "";

    public async Task InitializeAsync()
    {
        scenario = await E2EScenario.CreateAsync();
        try
        {
            var token = scenario.PathFor("token");
            await File.WriteAllTextAsync(token, Token);
            var probe = scenario.PathFor("probe.sh");
            await File.WriteAllTextAsync(probe, ProbeScript(HostRoot.GuestPath(token), scenario.Directory));
            Guest = scenario.StartGuest("inguest", options => options with
            {
                HostRoot = true,
                HostWorkingDirectory = HostRoot.GuestPath(RepoPaths.Root),
                Run = InGuestProgram.Step("forward-selftest", "--bytes", BytesText),
                HostCommand = InGuestProgram.Command("vsock-selftest", "--bytes", BytesText),
                HostCommandFile = probe,
                // Each command prints its RESULT even when a check fails (ok=0 after a FAIL line): wait for all of
                // them, so one failing command does not hide the others' results.
                FailFast = false,
            });
            await Guest.WaitForMarkerAsync("HOSTROOT", null, E2ETimeouts.Boot);
            TimeToHostRoot = Guest.Elapsed;
            // Every host command ends with a HOSTRUN line whatever happened inside it; the tests read the rest.
            await Guest.WaitForMarkerAsync("DONE", null, E2ETimeouts.Transfer);
            TimeToDone = Guest.Elapsed;
            await Guest.WaitForExitAsync(E2ETimeouts.Step);
            TimeToExit = Guest.Elapsed;
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

    public IReadOnlyList<GuestMarker> Markers(string kind, string? mode = null)
    {
        if (StartupFailure is not null)
        {
            throw new E2EScenarioException($"the host-run guest did not finish: {StartupFailure.Message}\n{Diagnostics}", StartupFailure);
        }
        return [.. Guest.ConsoleLines.Select(GuestMarker.TryParse).OfType<GuestMarker>().Where(m => m.Is(kind, mode))];
    }

    /// <summary>The one RESULT line of <paramref name="mode"/>; fails with the console unless it says ok=1.</summary>
    public GuestMarker Passed(string mode)
    {
        var result = Single("RESULT", mode);
        return result.Fields.TryGetValue("ok", out var ok) && ok == "1"
            ? result
            : throw new E2EScenarioException($"{mode} failed in the guest: {result.Line}\n{Diagnostics}", new InvalidOperationException());
    }

    public GuestMarker Single(string kind, string? mode)
    {
        var found = Markers(kind, mode);
        return found.Count == 1
            ? found[0]
            : throw new E2EScenarioException($"expected one '{kind} {mode}' marker, found {found.Count}\n{Diagnostics}", new InvalidOperationException());
    }

    // Runs inside the chroot. The repo is on the read-only host root, so the touch must fail; the scenario
    // directory must be hidden under the guest's /tmp; no VT_* kernel variable may leak into the environment.
    private static string ProbeScript(string tokenInGuest, string scenarioDirectory) => $"""
        readonly_root=1
        touch "$PWD/.inguest-write-probe" 2>/dev/null && readonly_root=0
        tmp_hidden=1
        [ -e "{scenarioDirectory}" ] && tmp_hidden=0
        echo "VSOCKTEST PROBE cwd=$PWD home=$HOME cli_home=$DOTNET_CLI_HOME token=$(cat "{tokenInGuest}") readonly_root=$readonly_root tmp_hidden=$tmp_hidden vt_vars=$(env | grep -c '^VT_')"
        """;
}
