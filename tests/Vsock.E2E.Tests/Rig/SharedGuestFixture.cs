namespace Vsock.E2E.Tests.Rig;

/// <summary>
/// A daemon and a guest booted once for all the tests of a class (a boot is ~3-4 s under TCG). A start-up failure is
/// kept rather than thrown from <see cref="InitializeAsync"/>, so that every test reports it through
/// <see cref="RunAsync"/> with the guest console and the daemon log. Subclasses start what they need in
/// <see cref="StartAsync"/>.
/// </summary>
public abstract class SharedGuestFixture : IAsyncLifetime
{
    private E2EScenario? scenario;
    private Exception? startupFailure;

    public E2EScenario Scenario => scenario ?? throw new InvalidOperationException("fixture not initialised");

    public QemuGuest Guest { get; protected set; } = null!;

    /// <summary>Starts the daemon and the guest in <see cref="Scenario"/> (already created) and waits until they serve.</summary>
    protected abstract Task StartAsync(E2EScenario scenario);

    public async Task InitializeAsync()
    {
        try
        {
            scenario = await E2EScenario.CreateAsync();
            await StartAsync(scenario);
        }
        catch (Exception e)
        {
            startupFailure = e;
        }
    }

    public async Task DisposeAsync()
    {
        if (scenario is not null)
            await scenario.DisposeAsync();
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
