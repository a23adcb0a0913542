using System.Globalization;
using System.Text;

namespace Vsock.InGuest;

/// <summary>
/// Console lines the rig reads (tests/Vsock.E2E.Tests/Rig/GuestMarker.cs): <c>VSOCKTEST RESULT &lt;mode&gt;
/// ok=0|1 key=value...</c> and <c>VSOCKTEST FAIL &lt;mode&gt; reason</c>. Each line is one write followed by a
/// flush, so lines from concurrent writers (and from guest programs sharing the serial console) never mix.
/// </summary>
internal static class Markers
{
    public const string Prefix = "VSOCKTEST ";
    private static readonly object Gate = new();

    public static void Line(string text)
    {
        lock (Gate)
        {
            Console.Out.Write(Prefix + text + "\n");
            Console.Out.Flush();
        }
    }

    public static void Result(string mode, bool ok, MarkerFields fields) =>
        Line($"RESULT {mode} ok={(ok ? 1 : 0)}{fields}");

    public static void Fail(string mode, string reason) => Line($"FAIL {mode} {OneLine(reason)}");

    private static string OneLine(string text) => text.ReplaceLineEndings(" | ");
}

/// <summary>Ordered <c>key=value</c> words for a marker line; values never contain spaces.</summary>
internal sealed class MarkerFields
{
    private readonly StringBuilder text = new();

    public MarkerFields Add(string key, string value)
    {
        text.Append(' ').Append(key).Append('=').Append(value.Replace(' ', '_'));
        return this;
    }

    public MarkerFields Add(string key, long value) => Add(key, value.ToString(CultureInfo.InvariantCulture));

    public MarkerFields Add(string key, bool value) => Add(key, value ? "1" : "0");

    public MarkerFields Add(string key, double value, string format) => Add(key, value.ToString(format, CultureInfo.InvariantCulture));

    public MarkerFields AddHex(string key, ulong value) => Add(key, value.ToString("x16", CultureInfo.InvariantCulture));

    public override string ToString() => text.ToString();
}
