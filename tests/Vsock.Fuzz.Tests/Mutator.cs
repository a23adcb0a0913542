namespace Vsock.Fuzz.Tests;

/// <summary>
/// A small, deterministic stand-in for AFL++'s havoc stage: bit flips, interesting values, inserted, deleted and
/// repeated ranges, and splices with another corpus input. Enough to walk each decoder off its seeds' paths.
/// </summary>
internal static class Mutator
{
    private static readonly byte[] InterestingBytes = [0, 1, 0x7f, 0x80, 0xff, (byte)' ', (byte)'\n', (byte)':', (byte)'-', 16, 44];
    private static readonly uint[] InterestingWords = [0, 1, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x1_0000, 0x7fff_ffff, 0xffff_ffff];

    public static byte[] Mutate(Random random, byte[] input, IReadOnlyList<byte[]> corpus)
    {
        var bytes = new List<byte>(input);
        for (var n = random.Next(1, 5); n > 0; n--)
        {
            var at = bytes.Count == 0 ? 0 : random.Next(bytes.Count);
            switch (random.Next(8))
            {
                case 0 when bytes.Count > 0:
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1 when bytes.Count > 0:
                    bytes[at] = (byte)random.Next(256);
                    break;
                case 2 when bytes.Count > 0:
                    bytes[at] = InterestingBytes[random.Next(InterestingBytes.Length)];
                    break;
                case 3:
                    bytes.InsertRange(at, Enumerable.Range(0, random.Next(1, 9)).Select(_ => (byte)random.Next(256)));
                    break;
                case 4 when bytes.Count > 0:
                    bytes.RemoveRange(at, random.Next(1, Math.Min(16, bytes.Count - at) + 1));
                    break;
                case 5 when bytes.Count > 0:
                    var length = random.Next(1, Math.Min(32, bytes.Count - at) + 1);
                    bytes.InsertRange(random.Next(bytes.Count + 1), bytes.GetRange(at, length));
                    break;
                case 6 when bytes.Count > 0:
                    var other = corpus[random.Next(corpus.Count)];
                    var from = other.Length == 0 ? 0 : random.Next(other.Length);
                    bytes.RemoveRange(at, bytes.Count - at);
                    bytes.AddRange(other.AsSpan(from).ToArray());
                    break;
                default:
                    if (bytes.Count >= 4)
                    {
                        var word = BitConverter.GetBytes(InterestingWords[random.Next(InterestingWords.Length)]);
                        var size = random.Next(2) == 0 ? 2 : 4;
                        var where = random.Next(bytes.Count - size + 1);
                        for (var i = 0; i < size; i++)
                            bytes[where + i] = word[i];
                    }
                    break;
            }
        }
        return [.. bytes];
    }
}
