using System.CommandLine;
using Microsoft.Extensions.Logging;
using Vsock.Actors.Settings;

namespace Vsock.Launcher.Configuration;

/// <summary>
/// Turns the command line (and the logging environment variables) into the devices to run.
/// Pure: no console output, no exit; every problem is a <see cref="ConfigurationException"/>.
/// </summary>
public static class LauncherConfiguration
{
    public static LaunchOptions Parse(string[] args) => Parse(args, Environment.GetEnvironmentVariable);

    /// <param name="environment">Looks up an environment variable (tests pass a dictionary).</param>
    public static LaunchOptions Parse(IReadOnlyList<string> args, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(environment);

        var cli = new CommandLine();
        ParseResult result = cli.Root.Parse(args, CommandLine.ParserConfiguration);
        if (result.Errors.Count > 0)
        {
            throw new ConfigurationException($"{result.Errors[0].Message.TrimEnd('.')} (see --help)");
        }

        if (result.Action is not null)
        {
            // Only -h and -V carry an action (the root command has none): render their text.
            var output = new StringWriter();
            result.Invoke(new InvocationConfiguration { Output = output, Error = output });
            return new LaunchOptions { InformationText = output.ToString() };
        }

        var warnings = new List<string>();
        LogLevel level = LogLevelResolver.Resolve(result.GetValue(cli.LogLevel), environment, warnings);

        IReadOnlyList<RawVm> sources = Sources(cli, result, out RawValue? yamlMetricsListen, out RawCluster? yamlCluster);
        var built = new List<(VmSettings Settings, RawVm Source)>(sources.Count);
        foreach (RawVm source in sources)
        {
            built.Add((VmSettingsBuilder.Build(source), source));
        }

        VmSettingsValidator.CheckDistinct(built);
        RawValue? metricsListen = MetricsListenSource(cli, result, yamlMetricsListen);
        RawCluster? cluster = ClusterSource(cli, result, yamlCluster);
        return new LaunchOptions
        {
            Vms = built.ConvertAll(b => b.Settings),
            MetricsListen = metricsListen is null ? null : MetricsListenParser.Parse(metricsListen),
            Cluster = cluster is null ? null : ClusterSettingsBuilder.Build(cluster, CommandLine.Name),
            LogLevel = level,
            Warnings = warnings,
        };
    }

    /// <summary><c>--metrics-listen</c>, or the YAML file's <c>metrics_listen</c>; not both.</summary>
    private static RawValue? MetricsListenSource(CommandLine cli, ParseResult result, RawValue? yaml)
    {
        string? flag = result.GetValue(cli.MetricsListen);
        if (flag is null)
        {
            return yaml;
        }

        return yaml is null
            ? new RawValue(flag, "--metrics-listen")
            : throw new ConfigurationException($"--metrics-listen cannot be combined with {yaml.Where} (one source of the metrics endpoint)");
    }

    /// <summary>The cluster flags, or the YAML file's <c>cluster:</c> mapping; not both.</summary>
    private static RawCluster? ClusterSource(CommandLine cli, ParseResult result, RawCluster? yaml)
    {
        string? bind = result.GetValue(cli.ClusterBind);
        string? seeds = result.GetValue(cli.ClusterSeeds);
        if (bind is null && seeds is null)
        {
            return yaml;
        }

        if (yaml is not null)
        {
            throw new ConfigurationException(
                "--cluster-bind/--cluster-seeds cannot be combined with the 'cluster:' mapping of --config (one source of cluster settings)");
        }

        return new RawCluster(
            string.Empty,
            bind is null ? null : new RawValue(bind, "--cluster-bind"),
            seeds is null ? null : ClusterSettingsBuilder.SplitSeeds(new RawValue(seeds, "--cluster-seeds")),
            "--cluster-bind",
            "--cluster-seeds");
    }

    /// <summary>The reference's precedence: the file, else the <c>--vm</c> list, else the flags; never a mix.</summary>
    private static IReadOnlyList<RawVm> Sources(CommandLine cli, ParseResult result, out RawValue? yamlMetricsListen, out RawCluster? yamlCluster)
    {
        yamlMetricsListen = null;
        yamlCluster = null;
        string? config = result.GetValue(cli.Config);
        string[] vms = result.GetValue(cli.Vm) ?? [];
        List<VmKey> flags = cli.DeviceOptions.Where(o => result.GetResult(o.Value) is not null).Select(o => o.Key).ToList();
        string flagList = string.Join(", ", flags.Select(k => VmKeys.Name(k, KeyStyle.Flag)));

        if (config is not null && vms.Length > 0)
        {
            throw new ConfigurationException("--config and --vm cannot be used together (one source of devices)");
        }

        if (config is not null && flags.Count > 0)
        {
            throw new ConfigurationException($"--config cannot be combined with {flagList} (the file describes every device)");
        }

        if (vms.Length > 0 && flags.Count > 0)
        {
            throw new ConfigurationException($"--vm cannot be combined with {flagList} (put those settings inside each --vm)");
        }

        if (config is not null)
        {
            YamlConfig file = YamlConfigLoader.Load(config);
            yamlMetricsListen = file.MetricsListen;
            yamlCluster = file.Cluster;
            return file.Vms;
        }

        if (vms.Length > 0)
        {
            return vms.Select((vm, i) => VmArgumentParser.Parse(vm, i + 1)).ToList();
        }

        if (flags.Count == 0)
        {
            throw new ConfigurationException(
                "no device configured: give --socket with --uds-path or --forward-cid, or one --vm per device, or --config FILE (see --help)");
        }

        var topLevel = new RawVm(string.Empty, "the command line", KeyStyle.Flag);
        foreach (VmKey key in flags)
        {
            string name = VmKeys.Name(key, KeyStyle.Flag);
            topLevel.Values[key] = new RawValue(result.GetValue(cli.DeviceOptions[key]) ?? string.Empty, name);
        }

        return [topLevel];
    }
}
