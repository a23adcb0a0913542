using System.Globalization;
using System.Text;

namespace Vsock.Launcher.Metrics;

/// <summary>How a metric family is exposed: a counter (monotonic, <c>_total</c>) or a gauge.</summary>
internal enum MetricKind
{
    Counter,
    Gauge,
}

/// <summary>One time series of a family: its labels (name, value) and its value, an integer or a real.</summary>
internal readonly record struct MetricSample(KeyValuePair<string, string>[] Labels, long Integer, double Real = 0, bool IsReal = false);

/// <summary>
/// The series of one instrument at one collection, named as the instrument is (OpenTelemetry's dotted name and
/// UCUM unit); <see cref="PrometheusText"/> turns that into the Prometheus name.
/// </summary>
internal sealed class MetricFamily(string instrument, string? unit, string? description, MetricKind kind)
{
    public string Instrument { get; } = instrument;
    public string? Unit { get; } = unit;
    public string? Description { get; } = description;
    public MetricKind Kind { get; } = kind;
    public List<MetricSample> Samples { get; } = [];
}

/// <summary>
/// Prometheus' text exposition format, version 0.0.4 (<see cref="ContentType"/>): <c># HELP</c>, <c># TYPE</c>, then
/// one line per series, families in the order given and series sorted by their labels. Names follow the
/// OpenTelemetry → Prometheus rules that Prometheus' own OTLP ingestion and OpenTelemetry's exporters apply: dots and
/// other characters outside <c>[a-zA-Z0-9_:]</c> become <c>_</c>; a unit becomes a suffix unless the name ends with
/// it already (<c>By</c> → <c>bytes</c>, <c>s</c> → <c>seconds</c>; an annotation such as <c>{packet}</c> adds
/// nothing); a counter ends in <c>_total</c>.
/// </summary>
internal static class PrometheusText
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static string Format(IEnumerable<MetricFamily> families)
    {
        var text = new StringBuilder(4096);
        foreach (MetricFamily family in families)
        {
            if (family.Samples.Count == 0)
            {
                continue; // nothing to say (no VM registered yet): Prometheus wants no TYPE without samples either
            }

            string name = Name(family.Instrument, family.Unit, family.Kind);
            if (!string.IsNullOrEmpty(family.Description))
            {
                text.Append("# HELP ").Append(name).Append(' ').Append(EscapeHelp(family.Description)).Append('\n');
            }

            text.Append("# TYPE ").Append(name).Append(' ').Append(family.Kind == MetricKind.Counter ? "counter" : "gauge").Append('\n');
            foreach (MetricSample sample in family.Samples.OrderBy(s => LabelText(s.Labels), StringComparer.Ordinal))
            {
                text.Append(name).Append(LabelText(sample.Labels)).Append(' ');
                if (sample.IsReal)
                {
                    text.Append(Real(sample.Real));
                }
                else
                {
                    text.Append(sample.Integer.ToString(CultureInfo.InvariantCulture));
                }

                text.Append('\n');
            }
        }

        return text.ToString();
    }

    /// <summary>The Prometheus name of an instrument: <c>vsock.rx.bytes</c> (By, counter) → <c>vsock_rx_bytes_total</c>.</summary>
    public static string Name(string instrument, string? unit, MetricKind kind)
    {
        string name = Sanitize(instrument, allowColon: true);
        string suffix = UnitSuffix(unit);
        if (suffix.Length > 0 && !name.EndsWith("_" + suffix, StringComparison.Ordinal) && name != suffix)
        {
            name = $"{name}_{suffix}";
        }

        if (kind == MetricKind.Counter && !name.EndsWith("_total", StringComparison.Ordinal))
        {
            name += "_total";
        }

        return name;
    }

    /// <summary>A label name as Prometheus allows it (<c>[a-zA-Z_][a-zA-Z0-9_]*</c>).</summary>
    public static string LabelName(string key) => Sanitize(key, allowColon: false);

    private static string UnitSuffix(string? unit)
    {
        if (string.IsNullOrEmpty(unit) || unit.StartsWith('{'))
        {
            return string.Empty; // no unit, or an annotation ({packet}): a count of things
        }

        return unit switch
        {
            "By" => "bytes",
            "s" => "seconds",
            "ms" => "milliseconds",
            "us" => "microseconds",
            "ns" => "nanoseconds",
            "1" => "ratio",
            _ => Sanitize(unit, allowColon: false).Trim('_'),
        };
    }

    private static string Sanitize(string text, bool allowColon)
    {
        var name = new StringBuilder(text.Length + 1);
        foreach (char c in text)
        {
            bool ok = char.IsAsciiLetterOrDigit(c) || c == '_' || (allowColon && c == ':');
            char next = ok ? c : '_';
            if (next == '_' && name.Length > 0 && name[^1] == '_')
            {
                continue; // one underscore for a run of replaced characters
            }

            name.Append(next);
        }

        if (name.Length == 0 || char.IsAsciiDigit(name[0]))
        {
            name.Insert(0, '_');
        }

        return name.ToString();
    }

    private static string LabelText(KeyValuePair<string, string>[] labels)
    {
        if (labels.Length == 0)
        {
            return string.Empty;
        }

        var text = new StringBuilder("{");
        for (int i = 0; i < labels.Length; i++)
        {
            if (i > 0)
            {
                text.Append(',');
            }

            text.Append(labels[i].Key).Append("=\"").Append(EscapeLabelValue(labels[i].Value)).Append('"');
        }

        return text.Append('}').ToString();
    }

    /// <summary>In label values: backslash, double quote and line feed are escaped.</summary>
    private static string EscapeLabelValue(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>In HELP text: backslash and line feed are escaped.</summary>
    private static string EscapeHelp(string text) =>
        text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private static string Real(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        _ when double.IsNaN(value) => "NaN",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };
}
