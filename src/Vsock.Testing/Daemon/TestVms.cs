using Akka.Hosting;
using Vsock.Actors.Hosting;
using Vsock.Actors.Settings;

namespace Vsock.Testing.Daemon;

/// <summary>
/// The VMs of a daemon under test: guest CIDs 3, 4, ..., each with its vhost-user socket (<c>vm{i}.sock</c>, where a
/// <see cref="SyntheticGuest"/> connects as the VMM) and its uds-path (<c>vm{i}.vsock</c>, where host programs connect)
/// in a fresh temporary directory of its own, so tests run side by side; short, because a unix socket path has at
/// most 107 bytes. Also the <see cref="DeviceReadiness"/> that tells when every VM listens, as the launcher waits
/// for before it tells systemd it is ready, so one <see cref="TestVms"/> serves one daemon. Dispose removes the
/// directory (again: it may be gone).
/// </summary>
public sealed class TestVms : IDisposable
{
    /// <summary>The first guest CID (0, 1 and 2 are reserved: the hypervisor, loopback, the host).</summary>
    public const ulong FirstCid = 3;

    private TestVms(string directory, IReadOnlyList<VmSettings> settings)
    {
        Directory = directory;
        Settings = settings;
        Readiness = new DeviceReadiness(settings.Select(vm => vm.GuestCid));
    }

    /// <summary>Where the sockets are.</summary>
    public string Directory { get; }

    /// <summary>What the daemon serves, one entry per VM, in CID order.</summary>
    public IReadOnlyList<VmSettings> Settings { get; }

    /// <summary>Completes once every VM's device listens (<see cref="DeviceReadiness.AllListening"/>).</summary>
    public DeviceReadiness Readiness { get; }

    public int Count => Settings.Count;

    public VmSettings this[int index] => Settings[index];

    /// <summary>
    /// <paramref name="count"/> VMs with the daemon's defaults; <paramref name="adjust"/> changes what a test needs
    /// (<c>vm =&gt; vm with { TxBufferSize = 262144 }</c>).
    /// </summary>
    public static TestVms Create(int count = 1, Func<VmSettings, VmSettings>? adjust = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        var directory = System.IO.Directory.CreateTempSubdirectory("vsock-").FullName;
        var vms = Enumerable.Range(0, count)
            .Select(i => new VmSettings
            {
                GuestCid = FirstCid + (ulong)i,
                Socket = Path.Combine(directory, $"vm{i}.sock"),
                UdsPath = Path.Combine(directory, $"vm{i}.vsock"),
            })
            .Select(vm => adjust is null ? vm : adjust(vm))
            .ToList();
        return new TestVms(directory, vms);
    }

    /// <summary>Waits for <see cref="Readiness"/>; a <see cref="TimeoutException"/> names the sockets that are missing.</summary>
    public Task WaitUntilListeningAsync(TimeSpan timeout) => WaitForReadinessAsync(Settings, Readiness, timeout);

    internal static async Task WaitForReadinessAsync(IReadOnlyList<VmSettings> vms, DeviceReadiness readiness, TimeSpan timeout)
    {
        try
        {
            await readiness.AllListening.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            var missing = vms.Select(vm => vm.Socket).Where(socket => !Path.Exists(socket));
            throw new TimeoutException($"the daemon's VMs did not all listen within {timeout.TotalSeconds:0} s; no socket yet: {string.Join(", ", missing)}");
        }
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // gone already (DirectoryNotFoundException), or a socket file still being unlinked by the daemon: the
            // temporary directory is cleaned up later
        }
    }
}

/// <summary>The daemon in any Akka.Hosting actor system (an Akka.Hosting.TestKit test's, say).</summary>
public static class TestVmsHostingExtensions
{
    /// <summary>
    /// What the launcher does (src/Vsock.Launcher/LauncherHost.cs) minus its logging: the readiness watcher first, so
    /// no device's announcement is missed, then <see cref="VsockHostingExtensions.WithVsockDevices"/> with the VMs.
    /// Await <see cref="TestVms.WaitUntilListeningAsync"/> before a guest or a host program connects. The VMs'
    /// directory is removed when the actor system terminates, after the devices removed their socket files, so a
    /// test class that owns the actor system (an Akka.Hosting.TestKit test) has nothing to dispose.
    /// </summary>
    public static AkkaConfigurationBuilder WithVsockDevices(this AkkaConfigurationBuilder builder, TestVms vms, ClusterSettings? cluster = null)
    {
        ArgumentNullException.ThrowIfNull(vms);
        return builder
            .WithDeviceReadiness(vms.Readiness)
            .WithVsockDevices(vms.Settings, cluster)
            .AddStartup((system, _) => system.RegisterOnTermination(vms.Dispose));
    }
}
