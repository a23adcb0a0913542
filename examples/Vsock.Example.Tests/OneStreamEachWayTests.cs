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
    private readonly TestVms _vms = TestVms.Create(count: 1);   // CID 3; vhost-user socket and uds-path in a temp directory

    protected override void ConfigureAkka(AkkaConfigurationBuilder builder, IServiceProvider provider) =>
        builder.WithVsockDevices(_vms);                            // WithDeviceReadiness + WithVsockDevices, as the launcher

    [Fact]
    public async Task A_host_program_and_a_guest_program_send_each_other_a_stream()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _vms.WaitUntilListeningAsync(TimeSpan.FromSeconds(10));
        await using var guest = SyntheticGuest.Connect(_vms[0].Socket);
        var udsPath = _vms[0].UdsPath!;

        // Host → guest: the guest listens on 5000; the host connects to uds-path ("CONNECT 5000\n" → "OK 5000\n").
        using var guestListener = guest.Listen(5000);
        using var host = await HostVsock.ConnectAsync(udsPath, 5000, cts.Token);
        var inGuest = await guestListener.AcceptAsync(cts.Token);
        await host.SendAllAsync("hello, guest"u8.ToArray(), cts.Token);
        Assert.Equal("hello, guest"u8.ToArray(), await inGuest.ReadExactlyAsync(12, cts.Token));

        // Guest → host: the host listens on uds-path_6000; the guest connects to CID 2, port 6000.
        using var hostListener = HostVsock.Listen(udsPath, 6000);
        var fromGuest = await guest.ConnectAsync(2, 6000, TimeSpan.FromSeconds(10), cts.Token);
        using var onHost = await hostListener.AcceptAsync(cts.Token);
        await fromGuest.WriteAsync("hello, host"u8.ToArray(), cts.Token);
        Assert.Equal("hello, host"u8.ToArray(), await onHost.ReadExactlyAsync(11, cts.Token));
    }
}
