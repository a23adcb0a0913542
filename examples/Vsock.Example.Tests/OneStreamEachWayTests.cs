using Akka.Hosting;
using Akka.Hosting.TestKit;
using Vsock.Testing;
using Vsock.Testing.Daemon;
using Vsock.Testing.HostSide;
using Xunit;

namespace Vsock.Example.Tests;

/// <summary>
/// A test of your own against the daemon, the way to start one: the daemon runs in this test's actor system (one VM,
/// guest CID 3), a <see cref="SyntheticGuest"/> plays QEMU and the Linux guest's virtio-vsock driver, and your host
/// program is a unix socket. No VM, no root, no AF_VSOCK on the host; it takes milliseconds.
/// </summary>
public sealed class OneStreamEachWayTests(ITestOutputHelper output) : TestKit(output: output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    // CID 3, with its vhost-user socket and uds-path in a temporary directory (removed when the actor system stops).
    private readonly TestVms _vms = TestVms.Create(count: 1);

    // The daemon, with the builder the launcher uses.
    protected override void ConfigureAkka(AkkaConfigurationBuilder builder, IServiceProvider provider) => builder.WithVsockDevices(_vms);

    [Fact]
    public async Task A_host_program_and_a_guest_program_send_each_other_a_stream()
    {
        using var cts = new CancellationTokenSource(Timeout);
        await _vms.WaitUntilListeningAsync(Timeout);
        await using var guest = SyntheticGuest.Connect(_vms[0].Socket);
        var udsPath = _vms[0].UdsPath!;

        // Host → guest: the guest listens on port 5000; the host connects to uds-path ("CONNECT 5000\n", "OK 5000\n").
        using (var guestListener = guest.Listen(5000))
        using (var host = await HostVsock.ConnectAsync(udsPath, 5000, cts.Token))
        {
            var inGuest = await guestListener.AcceptAsync(cts.Token);
            await host.SendAllAsync("hello, guest"u8.ToArray(), cts.Token);
            Assert.Equal("hello, guest"u8.ToArray(), await inGuest.ReadExactlyAsync(12, cts.Token));
            await inGuest.CloseAsync();
        }

        // Guest → host: the host listens on uds-path_6000; the guest connects to the host (CID 2), port 6000.
        using (var hostListener = HostVsock.Listen(udsPath, 6000))
        {
            var fromGuest = await guest.ConnectAsync(2, 6000, Timeout, cts.Token);
            using var onHost = await hostListener.AcceptAsync(cts.Token);
            await fromGuest.WriteAsync("hello, host"u8.ToArray(), cts.Token);
            Assert.Equal("hello, host"u8.ToArray(), await onHost.ReadExactlyAsync(11, cts.Token));
            await fromGuest.CloseAsync();
        }
    }
}
