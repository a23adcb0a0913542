namespace Vsock.E2E.Tests.Rig;

/// <summary>Locations inside the repository, found from the test assembly's directory.</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> RootLazy = new(FindRoot);

    public static string Root => RootLazy.Value;

    public static string BuildGuestScript => Path.Combine(Root, "tests", "e2e", "guest", "build-guest.sh");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "VsockActors.sln")))
            {
                return dir.FullName;
            }
        }
        throw new DirectoryNotFoundException($"no VsockActors.sln above {AppContext.BaseDirectory}");
    }
}
