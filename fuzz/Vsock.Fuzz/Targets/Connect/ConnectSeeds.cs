using System.Text;

namespace Vsock.Fuzz.Targets.Connect;

/// <summary>Seeds: valid lines as nc and socat send them (with data after them, CRLF, extra words), cut in places,
/// and the refusals (no port, a bad port, too long, control bytes, end of stream).</summary>
internal static class ConnectSeeds
{
    public static IEnumerable<(string, byte[])> All()
    {
        yield return ("connect-1234", Seed("CONNECT 1234\n"));
        yield return ("connect-with-data", Seed("CONNECT 5000\nGET / HTTP/1.0\r\n\r\n", 80, 200));
        yield return ("lowercase-crlf", Seed("connect 80\r\n", 10, 128, 250));
        yield return ("extra-words", Seed("Connect  4294967294 please\n"));
        yield return ("cut-everywhere", Seed("CONNECT 4294967295\n", 16, 48, 96, 144, 192, 224, 240));
        yield return ("no-newline-then-close", Seed("CONNECT 42", closes: true));
        yield return ("port-too-large", Seed("CONNECT 4294967296\n"));
        yield return ("too-long", Seed("CONNECT 1" + new string('0', 40) + "\n", 128));
        yield return ("control-byte", Seed("CONNECT 12\u0001\n"));
        yield return ("closed-empty", Seed("", closes: true));
    }

    private static byte[] Seed(string stream, params int[] cuts) => Seed(stream, false, cuts);

    private static byte[] Seed(string stream, bool closes, params int[] cuts) =>
        new FuzzInputWriter().U8(cuts.Length | (closes ? 8 : 0)).Bytes(cuts.Select(c => (byte)c).ToArray()).Bytes(Encoding.ASCII.GetBytes(stream)).ToArray();
}
