using System.Net.Sockets;
using Vsock.Testing;

namespace Vsock.Bench;

/// <summary>One VM streaming alone, then every VM at once, in the same daemon.</summary>
/// <param name="Vms">How many VMs streamed at once.</param>
/// <param name="One">The first VM's one stream, alone.</param>
/// <param name="All">One stream per VM at once: all bytes over the time until the last stream finished.</param>
/// <param name="SlowestVm">The lowest of the VMs' own rates (each VM's bytes over the time its stream took).</param>
/// <param name="FastestVm">The highest of them.</param>
internal readonly record struct MultiVmResult(int Vms, ThroughputResult One, ThroughputResult All, double SlowestVm, double FastestVm);

/// <summary>
/// Several VMs in one daemon (<c>--vm</c> per VM; a synthetic guest, with its own driver thread, per VM):
/// one host-initiated stream per VM, all streaming at once, against the first VM streaming alone in the same
/// daemon (the other VMs connected and idle). The same bytes in both: <c>totalBytes</c> through the one
/// stream, or split over the VMs' streams, as the four-stream throughput cells split theirs.
/// </summary>
internal static class MultiVmBench
{
    public const int VmCount = 4;

    public static async Task<MultiVmResult> RunAsync(Session session, Direction direction, int writeSize, long totalBytes)
    {
        var one = await ThroughputBench.RunAsync(session, direction, writeSize, 1, totalBytes);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var hosts = new List<Socket>();
        var guests = new List<GuestStream>();
        try
        {
            foreach (var vm in session.Vms)
            {
                var (h, g) = await ThroughputBench.OpenStreamsAsync(session, vm, 1, cts.Token);
                hosts.AddRange(h);
                guests.AddRange(g);
            }
            var all = await ThroughputBench.MoveAsync(session, [.. hosts], [.. guests], direction, writeSize, totalBytes / session.Vms.Count, cts.Token);
            return new MultiVmResult(session.Vms.Count, one, all.Total, all.PerStreamBytesPerSecond.Min(), all.PerStreamBytesPerSecond.Max());
        }
        finally
        {
            await ThroughputBench.CloseAsync([.. hosts], [.. guests]);
        }
    }
}
