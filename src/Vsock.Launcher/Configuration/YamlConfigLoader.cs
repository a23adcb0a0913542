using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Vsock.Launcher.Configuration;

/// <summary>What a <c>--config</c> file describes: the devices, where the metrics endpoint listens if it says, and the
/// cluster settings if it has a <c>cluster:</c> mapping.</summary>
internal sealed record YamlConfig(IReadOnlyList<RawVm> Vms, RawValue? MetricsListen, RawCluster? Cluster);

/// <summary>
/// The <c>--config FILE.yaml</c> format: a mapping with the key <c>vms</c>, holding a non-empty
/// list of VM mappings, and optionally <c>metrics_listen: HOST:PORT</c> and <c>cluster</c> (<c>bind:</c> and <c>seeds:</c>).
/// Read as a node tree (not deserialised into a class) so that unknown keys,
/// wrong value shapes and quoted numbers can be refused with the line and column they are at.
/// Unlike the reference: keys are accepted in both spellings (<c>forward_cid</c> and
/// <c>forward-cid</c>), unknown keys are errors rather than ignored, a missing file is an error
/// rather than an empty configuration, and a relative path is relative to the current directory
/// only (the reference also searches every parent directory).
/// </summary>
internal static class YamlConfigLoader
{
    private const string VmsKey = "vms";
    private const string MetricsListenKey = "metrics_listen";
    private const string MetricsListenDashKey = "metrics-listen";
    private const string ClusterKey = "cluster";

    public static YamlConfig Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new ConfigurationException($"--config {path}: cannot read the file: {OneLine(e.Message)}");
        }

        return Parse(text, path);
    }

    /// <param name="path">Only for messages.</param>
    internal static YamlConfig Parse(string text, string path)
    {
        var stream = new YamlStream();
        var parser = new TrackingParser(new Parser(new StringReader(text)));
        try
        {
            stream.Load(parser);
        }
        catch (YamlException e)
        {
            throw new ConfigurationException($"{At(path, e.Start)}: malformed YAML: {OneLine(e.Message)}");
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // YamlDotNet throws these, without a position, on some broken input (a flow sequence left
            // open across lines; a tag that is not a URI, "!<+>"; a key of control characters, found by
            // scripts/fuzz.sh config); the last good event is the best position we know.
            throw new ConfigurationException($"{At(path, parser.LastGood)}: malformed YAML: cannot parse what follows");
        }

        if (stream.Documents.Count == 0 || IsNull(stream.Documents[0].RootNode))
        {
            throw new ConfigurationException($"{path}: the file is empty (expected a 'vms:' list)");
        }

        if (stream.Documents.Count > 1)
        {
            throw new ConfigurationException($"{At(path, stream.Documents[1].RootNode.Start)}: more than one YAML document");
        }

        if (stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            YamlNode node = stream.Documents[0].RootNode;
            throw new ConfigurationException($"{At(path, node.Start)}: the top level must be a mapping with a 'vms:' list");
        }

        YamlNode? vms = null;
        RawValue? metricsListen = null;
        RawCluster? cluster = null;
        foreach ((YamlNode key, YamlNode value) in root.Children)
        {
            if (key is YamlScalarNode { Value: VmsKey })
            {
                vms = value;
            }
            else if (key is YamlScalarNode { Value: MetricsListenKey or MetricsListenDashKey } name)
            {
                if (metricsListen is not null)
                {
                    throw new ConfigurationException($"{At(path, key.Start)}: '{name.Value}' is given twice");
                }

                metricsListen = TopLevelScalar(value, $"{At(path, value.Start)}: {name.Value}");
            }
            else if (key is YamlScalarNode { Value: ClusterKey })
            {
                if (cluster is not null)
                {
                    throw new ConfigurationException($"{At(path, key.Start)}: 'cluster' is given twice");
                }

                cluster = ParseCluster(value, path);
            }
            else
            {
                throw new ConfigurationException($"{At(path, key.Start)}: unknown top-level key {Describe(key)} (only 'vms', 'metrics_listen' and 'cluster' are allowed)");
            }
        }

        if (vms is null)
        {
            throw new ConfigurationException($"{path}: missing 'vms:' list");
        }

        if (vms is not YamlSequenceNode list)
        {
            throw new ConfigurationException($"{At(path, vms.Start)}: 'vms' must be a list of VMs");
        }

        if (list.Children.Count == 0)
        {
            throw new ConfigurationException($"{At(path, vms.Start)}: 'vms' is empty (at least one VM is required)");
        }

        var result = new List<RawVm>(list.Children.Count);
        for (int i = 0; i < list.Children.Count; i++)
        {
            result.Add(ParseVm(list.Children[i], i, path));
        }

        return new YamlConfig(result, metricsListen, cluster);
    }

    /// <summary>A top-level setting with one value.</summary>
    private static RawValue TopLevelScalar(YamlNode node, string where)
    {
        if (node is not YamlScalarNode scalar)
        {
            throw new ConfigurationException($"{where}: expected a single value, not {(node is YamlSequenceNode ? "a list" : "a mapping")}");
        }

        return IsNull(scalar) ? throw new ConfigurationException($"{where}: has no value") : new RawValue(scalar.Value ?? string.Empty, where);
    }

    /// <summary><c>cluster:</c> with <c>bind: HOST:PORT</c> and <c>seeds:</c> as a list of HOST:PORT or one <c>+</c>-joined string.</summary>
    private static RawCluster ParseCluster(YamlNode node, string path)
    {
        if (node is not YamlMappingNode mapping)
        {
            throw new ConfigurationException($"{At(path, node.Start)}: 'cluster' must be a mapping with 'bind' and 'seeds'");
        }

        RawValue? bind = null;
        IReadOnlyList<RawValue>? seeds = null;
        foreach ((YamlNode keyNode, YamlNode valueNode) in mapping.Children)
        {
            string where = $"{At(path, valueNode.Start)}: cluster.{(keyNode as YamlScalarNode)?.Value}";
            switch ((keyNode as YamlScalarNode)?.Value)
            {
                case "bind" when bind is null:
                    bind = ClusterScalar(valueNode, where);
                    break;
                case "seeds" when seeds is null:
                    seeds = valueNode is YamlSequenceNode list
                        ? list.Children.Select(seed => ClusterScalar(seed, $"{At(path, seed.Start)}: cluster.seeds")).ToList()
                        : ClusterSettingsBuilder.SplitSeeds(ClusterScalar(valueNode, where));
                    break;
                case "bind" or "seeds":
                    throw new ConfigurationException($"{At(path, keyNode.Start)}: cluster: {Describe(keyNode)} is given twice");
                default:
                    throw new ConfigurationException(
                        $"{At(path, keyNode.Start)}: cluster: unknown key {Describe(keyNode)} (expected bind and seeds)");
            }
        }

        return new RawCluster($"{At(path, node.Start)}: cluster: ", bind, seeds, "bind", "seeds");
    }

    private static RawValue ClusterScalar(YamlNode node, string where)
    {
        if (node is not YamlScalarNode scalar)
        {
            throw new ConfigurationException($"{where}: expected HOST:PORT, not {(node is YamlSequenceNode ? "a list" : "a mapping")}");
        }

        return IsNull(scalar) ? throw new ConfigurationException($"{where}: has no value") : new RawValue(scalar.Value ?? string.Empty, where);
    }

    private static RawVm ParseVm(YamlNode node, int index, string path)
    {
        string name = $"vms[{index}]";
        if (node is not YamlMappingNode mapping)
        {
            throw new ConfigurationException($"{At(path, node.Start)}: {name} must be a mapping of settings (key: value)");
        }

        var vm = new RawVm($"{At(path, node.Start)}: {name}", $"{name} (line {node.Start.Line})", KeyStyle.Yaml);
        var spellings = new Dictionary<VmKey, string>();
        foreach ((YamlNode keyNode, YamlNode valueNode) in mapping.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { } key } || !VmKeys.TryParse(key, out VmKey parsed))
            {
                string spelled = (keyNode as YamlScalarNode)?.Value ?? string.Empty;
                throw new ConfigurationException(
                    $"{At(path, keyNode.Start)}: {name}: unknown key {Describe(keyNode)}{VmKeys.Suggestion(spelled, KeyStyle.Yaml)} " +
                    $"(expected one of {VmKeys.List(KeyStyle.Yaml)}, or the same with '-')");
            }

            if (spellings.TryGetValue(parsed, out string? earlier))
            {
                throw new ConfigurationException($"{At(path, keyNode.Start)}: {name}: '{key}' repeats '{earlier}'");
            }

            string where = $"{At(path, valueNode.Start)}: {name}.{key}";
            if (valueNode is not YamlScalarNode scalar)
            {
                string shape = valueNode is YamlSequenceNode ? "a list" : "a mapping";
                throw new ConfigurationException($"{where}: expected a single value, not {shape}");
            }

            if (IsNull(scalar))
            {
                throw new ConfigurationException($"{where}: has no value");
            }

            bool quoted = scalar.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted or ScalarStyle.Literal or ScalarStyle.Folded;
            spellings.Add(parsed, key);
            vm.Values[parsed] = new RawValue(scalar.Value ?? string.Empty, where, quoted);
        }

        return vm;
    }

    /// <summary>YAML's null: an empty plain scalar, <c>~</c> or <c>null</c>.</summary>
    private static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any, Value: null or "" or "~" or "null" or "Null" or "NULL" };

    private static string Describe(YamlNode key) =>
        key is YamlScalarNode { Value: { } text } ? $"'{text}'" : "(not a plain name)";

    private static string At(string path, Mark mark) => $"{path}:{mark.Line}:{mark.Column}";

    private static string OneLine(string message) => message.ReplaceLineEndings(" ").Trim();

    /// <summary>Remembers where the last successfully parsed event ended, for errors that carry no position.</summary>
    private sealed class TrackingParser(IParser inner) : IParser
    {
        public Mark LastGood { get; private set; } = new(0, 1, 1);

        public ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            bool moved = inner.MoveNext();
            if (inner.Current is { } current)
            {
                LastGood = current.End;
            }

            return moved;
        }
    }
}
