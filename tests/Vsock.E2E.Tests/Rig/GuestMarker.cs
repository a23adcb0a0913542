namespace Vsock.E2E.Tests.Rig;

/// <summary>
/// One marker line of the guest console, e.g.
/// <c>VSOCKTEST RESULT connect cid=1 port=5000 sent=1048576 ... ok=1</c>:
/// <see cref="Kind"/> = RESULT, <see cref="Mode"/> = connect, <see cref="Fields"/> = the key=value words.
/// A <c>reply=</c> field takes the rest of the line (the guest quotes a whole reply line there).
/// </summary>
public sealed class GuestMarker
{
    public const string Prefix = "VSOCKTEST ";

    private GuestMarker(string line, string kind, string? mode, IReadOnlyList<string> words, IReadOnlyDictionary<string, string> fields)
    {
        Line = line;
        Kind = kind;
        Mode = mode;
        Words = words;
        Fields = fields;
    }

    public string Line { get; }

    /// <summary>READY, RESULT, ECHO, FAIL, REFUSED, CID, STEP, DONE, BOOTED, ...</summary>
    public string Kind { get; }

    /// <summary>For RESULT lines, the program mode (connect, send, sink, ...); otherwise null.</summary>
    public string? Mode { get; }

    /// <summary>The words after the kind that are not key=value pairs (e.g. the port of READY).</summary>
    public IReadOnlyList<string> Words { get; }

    public IReadOnlyDictionary<string, string> Fields { get; }

    public static bool IsMarker(string line) => line.StartsWith(Prefix, StringComparison.Ordinal);

    public static GuestMarker? TryParse(string line)
    {
        if (!IsMarker(line))
        {
            return null;
        }
        var rest = line[Prefix.Length..];
        var parts = rest.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0)
        {
            return null;
        }
        var kind = parts[0];
        string? mode = null;
        var start = 1;
        if (kind == "RESULT" && parts.Length > 1 && !parts[1].Contains('=', StringComparison.Ordinal))
        {
            mode = parts[1];
            start = 2;
        }
        var words = new List<string>();
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = start; i < parts.Length; i++)
        {
            var eq = parts[i].IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                words.Add(parts[i]);
                continue;
            }
            var key = parts[i][..eq];
            if (key == "reply")
            {
                fields[key] = string.Join(' ', parts[i..])[(eq + 1)..];
                break;
            }
            fields[key] = parts[i][(eq + 1)..];
        }
        return new GuestMarker(line, kind, mode, words, fields);
    }

    public static GuestMarker Parse(string line) =>
        TryParse(line) ?? throw new FormatException($"not a guest marker line: '{line}'");

    public string Get(string key) =>
        Fields.TryGetValue(key, out var value)
            ? value
            : throw new KeyNotFoundException($"marker has no '{key}=' field: {Line}");

    public long GetLong(string key) => long.Parse(Get(key), System.Globalization.CultureInfo.InvariantCulture);

    public bool Is(string kind, string? mode = null) => Kind == kind && (mode is null || Mode == mode);

    public override string ToString() => Line;
}
