namespace Vsock.E2E.Tests.Rig;

/// <summary>
/// Finds the daemon under test: <c>$VSOCK_DAEMON</c> (an executable, or a .dll run with dotnet), else the
/// launcher's build output <c>src/Vsock.Launcher/bin/&lt;Configuration&gt;/net10.0/vhost-device-vsock.dll</c>
/// (this test assembly's configuration first).
/// </summary>
public static class DaemonLocator
{
    public const string EnvironmentVariable = "VSOCK_DAEMON";
    private const string Dll = "vhost-device-vsock.dll";

#if DEBUG
    private static readonly string[] Configurations = ["Debug", "Release"];
#else
    private static readonly string[] Configurations = ["Release", "Debug"];
#endif

    /// <summary>The daemon to start.</summary>
    public static DaemonCommand Resolve()
    {
        var overridePath = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(overridePath))
        {
            if (!File.Exists(overridePath))
                throw new FileNotFoundException($"{EnvironmentVariable}={overridePath} does not exist", overridePath);
            return DaemonCommand.For(overridePath);
        }
        var candidates = Configurations
            .Select(c => Path.Combine(RepoPaths.Root, "src", "Vsock.Launcher", "bin", c, "net10.0", Dll))
            .ToList();
        var found = candidates.FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException(
                $"the daemon is not built: none of {string.Join(", ", candidates)} exists. "
                + $"Build it with 'dotnet build src/Vsock.Launcher' or set {EnvironmentVariable}.");
        return DaemonCommand.For(found);
    }
}
