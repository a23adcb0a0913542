using System.Text;
using Vsock.Device.Connections;
using Status = Vsock.Device.Connections.ConnectCommandParser.Status;

namespace Vsock.Fuzz.Targets.Connect;

/// <summary>
/// The host side's <c>CONNECT &lt;port&gt;\n</c> parser (<see cref="ConnectCommandParser"/>) fed a stream in chunks.
///
/// Input: <c>u8 control</c> (bits 0-2: number of cuts k; bit 3: the client then closes its write side), k bytes
/// each cutting the stream at <c>b * length / 256</c>, then the stream bytes. Chunks are fed as a non-blocking read
/// would return them, until the parser completes or refuses the line.
///
/// Invariants: 0 ≤ consumed ≤ fed; NeedMore takes the whole chunk; Complete takes exactly up to and including the
/// first newline; an error message comes exactly with Invalid; and the outcome (status, port, bytes consumed in all)
/// is the same as a plain model of the line's grammar computes, and so the same however the stream is cut.
/// </summary>
internal sealed class ConnectLineTarget : IFuzzTarget
{
    public string Name => "connect";

    public IEnumerable<(string Name, byte[] Input)> Seeds() => ConnectSeeds.All();

    public string Run(ReadOnlySpan<byte> input)
    {
        var reader = new FuzzInput(input);
        var control = reader.U8();
        Span<byte> cutBytes = stackalloc byte[control & 7];
        reader.Bytes(cutBytes.Length).CopyTo(cutBytes);
        var closes = (control & 8) != 0;
        var stream = reader.Rest();

        Span<int> cuts = stackalloc int[cutBytes.Length + 1];
        for (var i = 0; i < cutBytes.Length; i++)
            cuts[i] = cutBytes[i] * stream.Length / 256;
        cuts[^1] = stream.Length;
        cuts.Sort();

        var chunked = Feed(stream, cuts, closes);
        var whole = Feed(stream, [stream.Length], closes);
        var model = Model(stream, closes);
        Invariant.Holds(chunked == model, $"cut at [{string.Join(",", cuts.ToArray())}] the parser says {chunked}, the model {model}");
        Invariant.Holds(whole == model, $"in one piece the parser says {whole}, the model {model}");
        return model.ToString();
    }

    internal readonly record struct Outcome(Status Status, uint Port, int Consumed);

    private static Outcome Feed(ReadOnlySpan<byte> stream, ReadOnlySpan<int> cuts, bool closes)
    {
        var parser = new ConnectCommandParser();
        var start = 0;
        var total = 0;
        foreach (var cut in cuts)
        {
            var chunk = stream[start..cut];
            start = cut;
            if (chunk.IsEmpty)
                continue; // a read of 0 bytes is end of stream, not a chunk
            var status = parser.Feed(chunk, out var consumed, out var port, out var error);
            Invariant.Holds(Enum.IsDefined(status), "an undefined status");
            Invariant.Holds(consumed >= 0 && consumed <= chunk.Length, $"consumed {consumed} of a {chunk.Length}-byte chunk");
            Invariant.Holds((status == Status.Invalid) == (error is not null), "an error message without Invalid, or Invalid without one");
            total += consumed;
            switch (status)
            {
                case Status.NeedMore:
                    Invariant.Holds(consumed == chunk.Length && !chunk.Contains((byte)'\n'), "NeedMore left bytes of the chunk or passed a newline");
                    break;
                case Status.Complete:
                    Invariant.Holds(consumed == chunk.IndexOf((byte)'\n') + 1, "Complete did not stop right after the first newline");
                    return new Outcome(status, port, total);
                default:
                    return new Outcome(status, 0, 0);
            }
        }
        if (!closes)
            return new Outcome(Status.NeedMore, 0, total);
        var last = parser.FeedEndOfStream(out var endPort, out var endError);
        Invariant.Holds(last != Status.NeedMore && (last == Status.Invalid) == (endError is not null), "end of stream left the line undecided or mislabelled");
        return last == Status.Complete ? new Outcome(last, endPort, total) : new Outcome(last, 0, 0);
    }

    /// <summary>The grammar the obvious way: the line is everything before the first newline.</summary>
    internal static Outcome Model(ReadOnlySpan<byte> stream, bool closes)
    {
        var newline = stream.IndexOf((byte)'\n');
        var lineLength = newline >= 0 ? newline + 1 : stream.Length;
        if (lineLength > ConnectCommandParser.MaxLineLength)
            return new Outcome(Status.Invalid, 0, 0);
        if (newline < 0 && !closes)
            return new Outcome(Status.NeedMore, 0, stream.Length);
        if (newline < 0 && stream.IsEmpty)
            return new Outcome(Status.Invalid, 0, 0);
        var line = stream[..(newline >= 0 ? newline : stream.Length)];
        if (line.EndsWith("\r"u8))
            line = line[..^1];
        foreach (var b in line)
        {
            if ((b < 0x20 && b != '\t') || b >= 0x7f)
                return new Outcome(Status.Invalid, 0, 0);
        }
        var words = Encoding.ASCII.GetString(line).Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (words.Length < 2 || !string.Equals(words[0], "CONNECT", StringComparison.OrdinalIgnoreCase) ||
            words[1].Length == 0 || !words[1].All(char.IsAsciiDigit) || !ulong.TryParse(words[1], out var port) || port > uint.MaxValue)
            return new Outcome(Status.Invalid, 0, 0);
        return new Outcome(Status.Complete, (uint)port, lineLength);
    }
}
