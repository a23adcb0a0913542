using Akka.Hosting;
using Vsock.Actors.Settings;

namespace Vsock.Actors.Hosting;

/// <summary>
/// The one way to put VsockActors into an Akka.Hosting actor system: the launcher and the tests
/// both call <see cref="WithVsockDevices"/>.
/// </summary>
public static class VsockHostingExtensions
{
    public static AkkaConfigurationBuilder WithVsockDevices(this AkkaConfigurationBuilder builder, IReadOnlyList<VmSettings> vms)
    {
        ArgumentNullException.ThrowIfNull(vms);
        return builder;
    }
}
