using System.Globalization;
using System.Text;

namespace Vsock.Launcher.Configuration;

/// <summary>
/// The command line, the environment or the YAML file does not describe a usable set of devices.
/// <see cref="Exception.Message"/> is one line that names the problem and where it is (the flag,
/// the <c>--vm</c> value, or <c>file:line:column</c>); the launcher prints it as <c>error: ...</c>
/// and exits with status 1. Messages quote what the user wrote, which may hold line breaks or other
/// control characters (an argument, a quoted YAML key): those are escaped, so the line stays one line.
/// </summary>
public sealed class ConfigurationException(string message) : Exception(OneLine(message))
{
    private static string OneLine(string message)
    {
        if (!message.Any(NeedsEscape))
            return message;
        var text = new StringBuilder(message.Length + 8);
        foreach (var c in message)
        {
            _ = c switch
            {
                '\n' => text.Append("\\n"),
                '\r' => text.Append("\\r"),
                _ when NeedsEscape(c) => text.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}"),
                _ => text.Append(c),
            };
        }
        return text.ToString();
    }

    /// <summary>Control characters but tab, and the Unicode line and paragraph separators.</summary>
    private static bool NeedsEscape(char c) =>
        (char.IsControl(c) && c != '\t') ||
        char.GetUnicodeCategory(c) is UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator;
}
