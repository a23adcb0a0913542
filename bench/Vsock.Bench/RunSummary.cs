using System.Globalization;
using System.Text;

namespace Vsock.Bench;

/// <summary>
/// Several runs side by side (<c>Vsock.Bench --summarize REPORT.md...</c>, used by scripts/bench-runs.sh):
/// every report ends with a comment block holding one <c>name | value</c> line per figure
/// (<see cref="Report"/>), and the summary gives, per figure, the lowest and highest value over the runs
/// and each run's value. Figures missing from a run are shown as "–" there.
/// </summary>
internal static class RunSummary
{
    public const string BlockStart = "<!-- figures (one per line, `name | value`; scripts/bench-runs.sh summarises them over several runs)";
    public const string BlockEnd = "-->";
    public const string Separator = "|";

    public static int Print(IReadOnlyList<string> files)
    {
        if (files.Count == 0)
        {
            Console.Error.WriteLine("usage: Vsock.Bench --summarize REPORT.md...");
            return 2;
        }
        var names = new List<string>();
        var runs = new List<Dictionary<string, string>>();
        foreach (var file in files)
        {
            var figures = Read(file);
            if (figures.Count == 0)
            {
                Console.Error.WriteLine($"{file}: no figures block (not a complete benchmark report)");
                return 1;
            }
            foreach (var name in figures.Keys.Where(n => !names.Contains(n)))
                names.Add(name);
            runs.Add(figures);
        }

        var output = new StringBuilder();
        output.Append(CultureInfo.InvariantCulture, $"# Benchmark: {files.Count} run(s)\n\n");
        for (var i = 0; i < files.Count; i++)
            output.Append(CultureInfo.InvariantCulture, $"- run {i + 1}: `{files[i]}`{LoadLine(files[i])}\n");
        output.Append('\n');
        output.Append("| figure | min | max |");
        for (var i = 0; i < files.Count; i++)
            output.Append(CultureInfo.InvariantCulture, $" run {i + 1} |");
        output.Append("\n|---|---:|---:|");
        output.Append(string.Concat(Enumerable.Repeat("---:|", files.Count)));
        output.Append('\n');
        foreach (var name in names)
        {
            var values = runs.Select(r => r.GetValueOrDefault(name, "–")).ToList();
            var numeric = values
                .Select(v => (Text: v, Ok: double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var x), Value: x))
                .Where(v => v.Ok)
                .ToList();
            var min = numeric.Count == 0 ? "–" : numeric.MinBy(v => v.Value).Text;
            var max = numeric.Count == 0 ? "–" : numeric.MaxBy(v => v.Value).Text;
            output.Append(CultureInfo.InvariantCulture, $"| {name} | {min} | {max} | {string.Join(" | ", values)} |\n");
        }
        output.Append("\nThroughput: the daemon's MB/s over the same run's unix-socket-pair reference (target ≥ 0.8). " +
                      "Round trips: p50 in µs, each next to the reference measured in the same placement and load (target: no higher). " +
                      "Set-up: connections per second (target ≥ 20,000). The full tables are in each run's report.\n");
        Console.Out.Write(output.ToString());
        return 0;
    }

    /// <summary>The figures block of one report: name → value as printed.</summary>
    private static Dictionary<string, string> Read(string file)
    {
        var figures = new Dictionary<string, string>();
        var inside = false;
        foreach (var line in File.ReadLines(file))
        {
            if (line == BlockStart)
            {
                inside = true;
                continue;
            }
            if (!inside)
                continue;
            if (line == BlockEnd)
                break;
            var cut = line.LastIndexOf($" {Separator} ", StringComparison.Ordinal);
            if (cut > 0)
                figures[line[..cut]] = line[(cut + 3)..].Trim();
        }
        return figures;
    }

    /// <summary>The report's load average at start, which says how quiet the machine was.</summary>
    private static string LoadLine(string file)
    {
        var machine = File.ReadLines(file).FirstOrDefault(l => l.StartsWith("- machine:", StringComparison.Ordinal));
        var at = machine?.IndexOf("load average at start: ", StringComparison.Ordinal) ?? -1;
        if (machine is null || at < 0)
            return "";
        var load = machine[(at + "load average at start: ".Length)..].Split(' ').Take(3);
        return $" (load average at start {string.Join(" ", load)})";
    }
}
