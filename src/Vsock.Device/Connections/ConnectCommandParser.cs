using System.Text;

namespace Vsock.Device.Connections;

/// <summary>
/// Incremental parser for the host side's <c>CONNECT &lt;port&gt;\n</c> line (Firecracker's hybrid vsock
/// protocol, as vhost-device-vsock reads it: the word is case-insensitive, extra words are ignored).
/// Fed whatever bytes a non-blocking read returned: a partial line waits for more; a line longer than
/// <see cref="MaxLineLength"/> or one that does not parse is rejected; bytes after the newline are
/// left for the caller (they are stream data for the guest; the reference loses them).
/// </summary>
public sealed class ConnectCommandParser
{
    public const int MaxLineLength = 32;

    private readonly byte[] _line = new byte[MaxLineLength];
    private int _length;

    public enum Status { NeedMore, Complete, Invalid }

    /// <summary>
    /// Consumes bytes up to and including the newline. <paramref name="consumed"/> says how many bytes of
    /// <paramref name="input"/> belong to the command; the rest are data.
    /// </summary>
    public Status Feed(ReadOnlySpan<byte> input, out int consumed, out uint port, out string? error)
    {
        port = 0;
        error = null;
        var newline = input.IndexOf((byte)'\n');
        var take = newline >= 0 ? newline + 1 : input.Length;
        if (_length + take > MaxLineLength)
        {
            consumed = 0;
            error = $"CONNECT line longer than {MaxLineLength} bytes";
            return Status.Invalid;
        }
        input[..take].CopyTo(_line.AsSpan(_length));
        _length += take;
        consumed = take;
        if (newline < 0)
            return Status.NeedMore;
        return Parse(_line.AsSpan(0, _length - 1), out port, out error) ? Status.Complete : Status.Invalid;
    }

    /// <summary>The client closed its write side: a complete line without newline is still accepted (as the reference does).</summary>
    public Status FeedEndOfStream(out uint port, out string? error)
    {
        port = 0;
        error = null;
        if (_length == 0)
        {
            error = "client closed before sending CONNECT";
            return Status.Invalid;
        }
        return Parse(_line.AsSpan(0, _length), out port, out error) ? Status.Complete : Status.Invalid;
    }

    private static bool Parse(ReadOnlySpan<byte> line, out uint port, out string? error)
    {
        port = 0;
        if (line.Length > 0 && line[^1] == (byte)'\r')
            line = line[..^1];
        foreach (var b in line)
        {
            if (b is < 0x20 and not (byte)'\t' || b >= 0x7f)
            {
                error = "CONNECT line contains non-printable bytes";
                return false;
            }
        }
        var text = Encoding.ASCII.GetString(line);
        var words = text.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (words.Length < 2 || !words[0].Equals("connect", StringComparison.OrdinalIgnoreCase))
        {
            error = $"expected \"CONNECT <port>\", got \"{text}\"";
            return false;
        }
        if (!uint.TryParse(words[1], System.Globalization.NumberStyles.None, null, out port))
        {
            error = $"invalid port \"{words[1]}\" in CONNECT line";
            return false;
        }
        error = null;
        return true;
    }
}
