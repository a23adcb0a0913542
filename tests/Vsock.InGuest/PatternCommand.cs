using System.Diagnostics;
using Vsock.Testing.HostSide;

namespace Vsock.InGuest;

/// <summary>
/// <c>pattern</c>: the checksum of the first <c>--bytes</c> of stream <c>--seed</c>, in the format of
/// vsock-test's <c>pattern</c> mode, plus how long it took: the C# twin checked inside the guest, and the
/// CPU cost of the checks that the transfer commands make per byte.
/// </summary>
internal static class PatternCommand
{
    public static Task<int> RunAsync(CommandArguments args)
    {
        var bytes = args.Int64("bytes", 1 << 20);
        var seed = (ulong)args.UInt32("seed", 1);
        args.EnsureAllUsed();
        var clock = Stopwatch.StartNew();
        var checksum = TestPattern.Checksum(bytes, seed);
        Markers.Result("pattern", ok: true, new MarkerFields()
            .Add("bytes", bytes).Add("seed", (long)seed).AddHex("sha", checksum).Add("ms", clock.Elapsed.TotalMilliseconds, "0.0"));
        return Task.FromResult(InGuestProgram.Passed);
    }
}
