using Vsock.E2E.Tests.Rig;

namespace Vsock.E2E.Tests;

/// <summary>
/// One daemon (started exactly like the reference: <c>--guest-cid 3 --socket S --uds-path U</c>) and one
/// guest booted once for all of <see cref="DaemonDataPathTests"/>. The guest echoes on port 1234 forever
/// and takes further steps through its serial console, so each test drives its own guest-side program
/// without paying another boot (~3-4 s under TCG).
/// </summary>
public sealed class DaemonGuestFixture : IAsyncLifetime
{
    public const uint GuestCid = 3;
    public const uint EchoPort = 1234;

    private E2EScenario? scenario;
    private Exception? startupFailure;

    public E2EScenario Scenario => scenario ?? throw new InvalidOperationException("fixture not initialised");

    public string UdsPath => Scenario.PathFor("vm3.vsock");

    public string VhostSocket => Scenario.PathFor("vhost3.socket");

    public DaemonProcess Daemon { get; private set; } = null!;

    public QemuGuest Guest { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        try
        {
            scenario = await E2EScenario.CreateAsync();
            Daemon = await scenario.StartDaemonAsync(
                ["--guest-cid", $"{GuestCid}", "--socket", VhostSocket, "--uds-path", UdsPath], [VhostSocket], [UdsPath]);
            // The guest serves every test of the class, one after another: give it far more than one test's time.
            Guest = scenario.StartGuest("cid3", VhostSocket, $"cid;bg:listen-echo,{EchoPort},0", console: true, lifetime: TimeSpan.FromMinutes(20));
            await Guest.WaitForListenerAsync(EchoPort, E2ETimeouts.Boot);
        }
        catch (Exception e)
        {
            startupFailure = e;
        }
    }

    public async Task DisposeAsync()
    {
        if (scenario is not null)
        {
            await scenario.DisposeAsync();
        }
    }

    /// <summary>Runs a test body against the shared daemon and guest; failures carry the console and daemon log.</summary>
    public Task RunAsync(ITestOutputHelper output, Func<Task> body)
    {
        if (startupFailure is not null)
        {
            var diagnostics = scenario?.Diagnostics() ?? "";
            var problem = startupFailure is GuestConsoleException g ? g.Problem : startupFailure.ToString();
            throw new E2EScenarioException($"daemon + guest did not start: {problem}\n{diagnostics}", startupFailure);
        }
        return Scenario.RunAsync(output, body);
    }
}
