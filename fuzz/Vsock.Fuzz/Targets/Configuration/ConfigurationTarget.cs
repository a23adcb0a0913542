using System.Text;
using Vsock.Launcher.Configuration;

namespace Vsock.Fuzz.Targets.Configuration;

/// <summary>
/// The launcher's configuration: arbitrary YAML text, and arbitrary command lines.
///
/// Input: <c>u8 mode</c>, then the rest as UTF-8 (invalid sequences become U+FFFD). Mode bit 0 clear: the rest is a
/// YAML file, parsed as <c>--config</c> would and every VM built and cross-checked as the launcher does. Bit 0 set:
/// the rest is argv, split at NUL bytes, for <see cref="LauncherConfiguration.Parse(IReadOnlyList{string}, Func{string, string?})"/>;
/// bit 1 set: the last argument is <c>RUST_LOG</c> instead, bit 2: <c>VHOST_DEVICE_VSOCK_LOG</c>. A <c>--config</c>
/// path is kept inside a scratch folder that holds the README's YAML example as <c>vms.yaml</c> (a fuzzed path must
/// not read /dev/zero or the rest of the disk).
///
/// Invariant: any outcome but an exception other than <see cref="ConfigurationException"/>, whose message is the
/// one line the launcher prints after "error: ".
/// </summary>
internal sealed class ConfigurationTarget : IFuzzTarget
{
    private static readonly Lazy<string> Scratch = new(CreateScratch);
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    public string Name => "config";

    public IEnumerable<(string Name, byte[] Input)> Seeds() => ConfigurationSeeds.All();

    public string Run(ReadOnlySpan<byte> input)
    {
        var reader = new FuzzInput(input);
        var mode = reader.U8();
        var text = Utf8.GetString(reader.Rest());
        try
        {
            return (mode & 1) == 0 ? Yaml(text) : CommandLine(text, mode);
        }
        catch (ConfigurationException e)
        {
            Invariant.Holds(e.Message.Length > 0 && !e.Message.Any(c => c is '\n' or '\r' or '\f' or '\v' or '\u0085' or '\u2028' or '\u2029'),
                $"a configuration error is not one non-empty line: \"{e.Message}\"");
            return "error";
        }
        catch (InvariantViolationException)
        {
            throw;
        }
        catch (Exception e)
        {
            throw Invariant.Broken($"{e.GetType().Name} instead of a configuration error: {e.Message}", e);
        }
    }

    private static string Yaml(string text)
    {
        var file = YamlConfigLoader.Parse(text, "fuzz.yaml");
        Invariant.Holds(file.Vms.Count > 0, "a YAML file with no VM was accepted");
        var built = file.Vms.Select(vm => (VmSettingsBuilder.Build(vm), vm)).ToList();
        VmSettingsValidator.CheckDistinct(built);
        var metrics = file.MetricsListen is { } listen ? $", metrics on {MetricsListenParser.Parse(listen)}" : "";
        return $"{built.Count} vms{metrics}";
    }

    private static string CommandLine(string text, byte mode)
    {
        var args = text.Split('\0').ToList();
        var environment = new Dictionary<string, string>();
        foreach (var (bit, variable) in new[] { (2, LogLevelResolver.RustVariable), (4, LogLevelResolver.OwnVariable) })
        {
            if ((mode & bit) != 0 && args.Count > 0)
            {
                environment[variable] = args[^1];
                args.RemoveAt(args.Count - 1);
            }
        }
        ConfineConfigPaths(args);
        var options = LauncherConfiguration.Parse(args, v => environment.GetValueOrDefault(v));
        if (options.InformationText is not null)
            return "help or version";
        Invariant.Holds(options.Vms.Count > 0, "a command line with no VM was accepted");
        return $"{options.Vms.Count} vms";
    }

    /// <summary>Every <c>--config</c> path becomes a file name in the scratch folder (letters, digits, '.', '-', '_').</summary>
    private static void ConfineConfigPaths(List<string> args)
    {
        for (var i = 0; i < args.Count; i++)
        {
            if (args[i] == "--config" && i + 1 < args.Count)
            {
                args[i + 1] = Confine(args[i + 1]);
                i++;
            }
            else if (args[i].StartsWith("--config=", StringComparison.Ordinal) || args[i].StartsWith("--config:", StringComparison.Ordinal))
            {
                args[i] = args[i][..9] + Confine(args[i][9..]);
            }
        }
    }

    private static string Confine(string path)
    {
        var name = new string(Path.GetFileName(path).Where(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_').ToArray());
        return Path.Combine(Scratch.Value, name is "" or "." or ".." ? "missing.yaml" : name);
    }

    /// <summary>Next to the program (AFL++ ends the process with SIGKILL, so nothing could clean up a temp folder).</summary>
    private static string CreateScratch()
    {
        var dir = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "config-scratch")).FullName;
        File.WriteAllText(Path.Combine(dir, "vms.yaml"), ConfigurationSeeds.ReadmeYaml);
        return dir;
    }
}
