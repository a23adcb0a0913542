using Akka.Configuration;
using Vsock.Actors.Hosting;

namespace Vsock.Actors.Tests.TestSupport;

public static class VsockTestKitConfig
{
    /// <summary>The production dispatcher HOCON, loaded the way the hosting extension loads it.</summary>
    public static Config Config => ConfigurationFactory.ParseString(File.ReadAllText(VsockHostingExtensions.HoconPath));
}
