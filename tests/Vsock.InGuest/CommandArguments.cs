using System.Globalization;

namespace Vsock.InGuest;

/// <summary>A command line the program cannot run; printed with the command's usage.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>
/// The options after the subcommand: <c>--name value</c> pairs, each at most once. A command reads the
/// options it knows, then calls <see cref="EnsureAllUsed"/> so a misspelt option is an error, not a default.
/// </summary>
internal sealed class CommandArguments
{
    private readonly Dictionary<string, string> values;
    private readonly HashSet<string> used = new(StringComparer.Ordinal);

    private CommandArguments(Dictionary<string, string> values) => this.values = values;

    public static CommandArguments Parse(IReadOnlyList<string> words)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < words.Count; i += 2)
        {
            var word = words[i];
            if (!word.StartsWith("--", StringComparison.Ordinal) || word.Length == 2)
                throw new UsageException($"expected --option, got '{word}'");
            if (i + 1 >= words.Count)
                throw new UsageException($"{word} needs a value");
            if (!values.TryAdd(word[2..], words[i + 1]))
                throw new UsageException($"{word} given twice");
        }
        return new CommandArguments(values);
    }

    public string String(string name, string fallback) => Take(name) ?? fallback;

    public uint UInt32(string name, uint fallback) =>
        Take(name) is { } text
            ? uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
                ? value
                : throw new UsageException($"--{name} must be an unsigned 32-bit number, got '{text}'")
            : fallback;

    public long Int64(string name, long fallback, long minimum = 0) =>
        Take(name) is { } text
            ? long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= minimum
                ? value
                : throw new UsageException($"--{name} must be a number >= {minimum}, got '{text}'")
            : fallback;

    public void EnsureAllUsed()
    {
        var unknown = values.Keys.Where(k => !used.Contains(k)).Select(k => "--" + k).ToList();
        if (unknown.Count > 0)
            throw new UsageException($"unknown option(s) {string.Join(", ", unknown)}");
    }

    private string? Take(string name)
    {
        used.Add(name);
        return values.TryGetValue(name, out var value) ? value : null;
    }
}
