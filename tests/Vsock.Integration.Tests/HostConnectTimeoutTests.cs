using System.Diagnostics;
using System.Net.Sockets;
using Vsock.Testing;

namespace Vsock.Integration.Tests;

/// <summary>
/// A guest connect to <c>uds-path_PORT</c> whose listener never accepts (its backlog full): the daemon's connect
/// gives up after its 2 s limit and the guest gets an RST, instead of a pool thread waiting for ever.
/// </summary>
public sealed class HostConnectTimeoutTests
{
    [Fact]
    public async Task A_guest_connect_to_a_full_backlog_is_reset_after_two_seconds_and_the_VM_carries_on()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket);
        var port = Scenario.NextPort();
        var path = $"{daemon[0].UdsPath}_{port}";
        using var stuck = HostVsock.Listen(daemon[0].UdsPath!, port, backlog: 1); // and never accepts
        var fillers = new List<Socket>();
        try
        {
            // Fill the backlog (Linux lets backlog + 1 wait).
            while (true)
            {
                var filler = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { Blocking = false };
                try
                {
                    filler.Connect(new UnixDomainSocketEndPoint(path));
                    fillers.Add(filler);
                }
                catch (SocketException)
                {
                    filler.Dispose();
                    break;
                }
            }

            var clock = Stopwatch.StartNew();
            var attempts = Enumerable.Range(0, 3).Select(_ => Assert.ThrowsAsync<GuestConnectionRefusedException>(
                () => guest.ConnectAsync(2, port, TimeSpan.FromSeconds(10)))).ToList();
            await Task.WhenAll(attempts);
            var waited = clock.Elapsed;
            Assert.InRange(waited, TimeSpan.FromSeconds(1.8), TimeSpan.FromSeconds(6));

            await Scenario.VmServesAsync(guest, daemon[0].UdsPath!);
            Scenario.AssertClean(guest);
        }
        finally
        {
            foreach (var filler in fillers)
                filler.Dispose();
        }
    }
}
