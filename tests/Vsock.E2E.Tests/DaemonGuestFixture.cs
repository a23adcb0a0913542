using Vsock.E2E.Tests.Rig;

namespace Vsock.E2E.Tests;

/// <summary>
/// One daemon (started exactly like the reference: <c>--guest-cid 3 --socket S --uds-path U</c>) and one
/// guest booted once for all of <see cref="DaemonDataPathTests"/>. The guest echoes on port 1234 forever
/// and takes further steps through its serial console, so each test drives its own guest-side program
/// without paying another boot (~3-4 s under TCG).
/// </summary>
public sealed class DaemonGuestFixture : SharedGuestFixture
{
    public const uint GuestCid = 3;
    public const uint EchoPort = 1234;

    public string UdsPath => Scenario.PathFor("vm3.vsock");

    public string VhostSocket => Scenario.PathFor("vhost3.socket");

    public DaemonProcess Daemon { get; private set; } = null!;

    protected override async Task StartAsync(E2EScenario scenario)
    {
        Daemon = await scenario.StartDaemonAsync(
            ["--guest-cid", $"{GuestCid}", "--socket", VhostSocket, "--uds-path", UdsPath], [VhostSocket], [UdsPath]);
        // The guest serves every test of the class, one after another: give it far more than one test's time.
        Guest = scenario.StartGuest("cid3", VhostSocket, $"cid;bg:listen-echo,{EchoPort},0", console: true, lifetime: TimeSpan.FromMinutes(20));
        await Guest.WaitForListenerAsync(EchoPort, E2ETimeouts.Boot);
    }
}
