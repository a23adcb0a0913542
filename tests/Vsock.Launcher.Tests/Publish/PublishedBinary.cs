using System.Diagnostics;

namespace Vsock.Launcher.Tests.Publish;

/// <summary>
/// The single-file binary scripts/publish.sh makes. <c>scripts/test.sh</c> publishes it before the tests and
/// names it in <c>VSOCK_PUBLISHED_BINARY</c>; without that variable (a plain <c>dotnet test</c>) this class
/// fixture runs scripts/publish.sh into a scratch directory (about a minute) and removes it afterwards.
/// </summary>
public sealed class PublishedBinary : IDisposable
{
    public const string EnvironmentVariable = "VSOCK_PUBLISHED_BINARY";

    /// <summary>The scratch directory this fixture published into; null when the binary was given.</summary>
    private readonly string? _output;

    public PublishedBinary()
    {
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } given)
        {
            Assert.True(File.Exists(given), $"{EnvironmentVariable}={given} does not exist");
            Executable = given;
            return;
        }

        _output = Directory.CreateTempSubdirectory("vsock-publish-").FullName;
        var start = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(RepositoryRoot(), "scripts", "publish.sh"));
        start.ArgumentList.Add(_output);
        using var publish = Process.Start(start)!;
        Task<string> stdout = publish.StandardOutput.ReadToEndAsync();
        Task<string> stderr = publish.StandardError.ReadToEndAsync();
        Assert.True(publish.WaitForExit(TimeSpan.FromMinutes(15)), "scripts/publish.sh did not finish in 15 minutes");
        Assert.True(publish.ExitCode == 0, $"scripts/publish.sh failed: {stderr.Result}");
        Executable = stdout.Result.Trim();
    }

    public string Executable { get; }

    public void Dispose()
    {
        if (_output is not null)
            Directory.Delete(_output, recursive: true);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "VsockActors.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"no VsockActors.sln above {AppContext.BaseDirectory}");
    }
}
