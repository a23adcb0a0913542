namespace Vsock.E2E.Tests.Rig;

/// <summary>
/// The .NET program that runs inside host-run guests (tests/Vsock.InGuest), as built by <c>dotnet build</c>:
/// <c>tests/Vsock.InGuest/bin/&lt;Configuration&gt;/net10.0/Vsock.InGuest.dll</c>, this test assembly's
/// configuration first. The E2E test project references it for build order only.
/// </summary>
public static class InGuestProgram
{
    private const string Dll = "Vsock.InGuest.dll";

#if DEBUG
    private static readonly string[] Configurations = ["Debug", "Release"];
#else
    private static readonly string[] Configurations = ["Release", "Debug"];
#endif

    public static string DllPath
    {
        get
        {
            var candidates = Configurations
                .Select(c => Path.Combine(RepoPaths.Root, "tests", "Vsock.InGuest", "bin", c, "net10.0", Dll))
                .ToList();
            return candidates.FirstOrDefault(File.Exists)
                ?? throw new FileNotFoundException(
                    $"Vsock.InGuest is not built: none of {string.Join(", ", candidates)} exists. Build it with 'dotnet build tests/Vsock.InGuest'.");
        }
    }

    /// <summary>The host's dotnet as the guest sees it (the one running these tests, else /usr/bin/dotnet).</summary>
    public static string Dotnet =>
        HostRoot.GuestPath(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "/usr/bin/dotnet");

    /// <summary>A <see cref="QemuGuestOptions.HostCommand"/> that runs <c>Vsock.InGuest &lt;arguments&gt;</c>.</summary>
    public static IReadOnlyList<string> Command(params string[] arguments) => [Dotnet, HostRoot.GuestPath(DllPath), .. arguments];

    /// <summary>The same as a <see cref="QemuGuestOptions.Run"/> step (<c>host,dotnet,dll,arguments...</c>).</summary>
    public static string Step(params string[] arguments) => "host," + string.Join(',', Command(arguments));
}
