using Vsock.Actors.Settings;
using Vsock.Launcher.Configuration;

namespace Vsock.Launcher.Tests;

/// <summary>Runs the pure parser with an empty environment, so the machine's RUST_LOG cannot leak in.</summary>
internal static class Cli
{
    public static LaunchOptions Parse(params string[] args) => LauncherConfiguration.Parse(args, _ => null);

    public static IReadOnlyList<VmSettings> Vms(params string[] args) => Parse(args).Vms;

    /// <summary>A whole command line, split on whitespace like the reference's own tests do.</summary>
    public static IReadOnlyList<VmSettings> Line(string commandLine) =>
        Vms(commandLine.Split((char[])[' ', '\n', '\\'], StringSplitOptions.RemoveEmptyEntries));

    /// <summary>The one-line message of the error these arguments must produce.</summary>
    public static string Error(params string[] args)
    {
        var e = Assert.Throws<ConfigurationException>(() => Parse(args));
        Assert.DoesNotContain('\n', e.Message);
        Assert.DoesNotContain('\r', e.Message);
        return e.Message;
    }
}

/// <summary>A scratch directory for YAML files and socket paths, removed afterwards.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        // Short and under /tmp: socket paths built from it must fit sun_path (107 bytes).
        Path = Directory.CreateTempSubdirectory("vl-").FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string Write(string name, string text)
    {
        string path = File(name);
        System.IO.File.WriteAllText(path, text);
        return path;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
