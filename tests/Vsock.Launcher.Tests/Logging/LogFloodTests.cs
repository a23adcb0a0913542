using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Vsock.Testing;
using Vsock.Testing.HostSide;
using Vsock.Testing.Packets;
using Xunit.Abstractions;
using DaemonProcess = Vsock.Launcher.Tests.Daemon.DaemonProcess;

namespace Vsock.Launcher.Tests.Logging;

/// <summary>
/// Logs a guest cannot flood (issue 11): the daemon as its own process at the default level (info), its real
/// stderr measured while a synthetic guest misbehaves as fast as it can. A corrupt TX ring kicked a million times,
/// and floods of bad chains, bad packets, spoofed CIDs and REQUESTs to unreachable CIDs, each cost a bounded
/// number of lines; the VM's neighbour is served throughout and the VM itself after its VMM reconnects.
/// </summary>
public sealed class LogFloodTests(ITestOutputHelper output) : IDisposable
{
    private const int Kicks = 1_000_000;
    private const long Megabyte = 1_000_000;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_million_kicks_of_a_corrupt_ring_log_one_line()
    {
        using var daemon = StartDaemon();
        long before;
        var clock = Stopwatch.StartNew();
        await using (var guest = SyntheticGuest.Connect(_dir.File("vhost3.socket")))
        {
            Assert.True(daemon.WaitForLine("VMM connected"), daemon.Stderr);
            before = Bytes(daemon);
            guest.CorruptTxAvailIndex((ushort)(guest.Options.QueueSize * 4));
            for (var i = 0; i < Kicks; i++)
                guest.KickTx();
            var kicked = clock.Elapsed;
            // The daemon takes the kicks as they come (an eventfd coalesces them); give it time to catch up.
            await Task.Delay(TimeSpan.FromSeconds(1));
            var grew = Bytes(daemon) - before;
            var added = daemon.StderrLines.Where(l => l.Contains("ring is corrupt", StringComparison.Ordinal)).ToList();
            output.WriteLine($"{Kicks} kicks in {kicked.TotalSeconds:0.00} s; the log grew by {grew} bytes, {added.Count} 'ring is corrupt' line(s)");
            Assert.True(grew < Megabyte, $"the log grew by {grew} bytes");
            Assert.Single(added);
            Assert.Contains("WRN", added[0], StringComparison.Ordinal);
            await BystanderServesAsync();
        }
        // The VMM (the synthetic guest) goes; a new one on the same socket gets a working ring.
        await using (var again = SyntheticGuest.Connect(_dir.File("vhost3.socket")))
            await RoundTripAsync(again, _dir.File("vm3.vsock"));
        output.WriteLine($"the whole log: {daemon.StderrLines.Count} lines, {Bytes(daemon)} bytes");
    }

    [Fact]
    public async Task Floods_of_bad_chains_bad_packets_spoofed_cids_and_unreachable_requests_stay_bounded()
    {
        using var daemon = StartDaemon();
        await using var guest = SyntheticGuest.Connect(_dir.File("vhost3.socket"));
        Assert.True(daemon.WaitForLine("VMM connected"), daemon.Stderr);
        var before = Bytes(daemon);
        var linesBefore = daemon.StderrLines.Count;
        var clock = Stopwatch.StartNew();

        // Past one 10 s window, so the "... suppressed" lines are part of what is measured.
        const int PerKind = 25; // four kinds, 100 chains a round: the 128-entry TX ring holds a round
        var rounds = 0;
        for (; rounds < 400 || clock.Elapsed < TimeSpan.FromSeconds(10.5); rounds++)
        {
            for (var i = 0; i < PerKind; i++)
            {
                guest.SendRawTx(RawDescriptor.Readable(guest.RamSize + 0x1000, 44));                                // bad chain
                guest.SendPacket(guest.MakeHeader(2, 1234, 1234, VsockOp.Rw) with { Len = 1000 }, new byte[10]);    // bad packet
                guest.SendPacket(guest.MakeHeader(2, 50000, 3333, VsockOp.Request) with { SrcCid = 99 });          // spoofed CID
                guest.SendPacket(guest.MakeHeader(77, (uint)(40000 + i), 3333, VsockOp.Request));                  // unreachable CID
            }
            await guest.WaitForTxDrainedAsync(Timeout);
        }
        var elapsed = clock.Elapsed;
        await Task.Delay(500); // the last lines reach stderr
        var grew = Bytes(daemon) - before;
        var added = daemon.StderrLines.Count - linesBefore;
        var chains = rounds * PerKind * 4;
        output.WriteLine($"{chains} bad chains and packets in {elapsed.TotalSeconds:0.00} s; the log grew by {added} lines, {grew} bytes");

        // Per topic (four here) and per 10 s window: 10 lines, and one "... suppressed" line for the window before.
        var windows = (int)(elapsed.TotalSeconds / 10) + 1;
        Assert.True(added <= 4 * 11 * windows + 5, $"{added} lines in {elapsed.TotalSeconds:0.0} s");
        Assert.True(grew < Megabyte, $"the log grew by {grew} bytes");
        Assert.Contains(daemon.StderrLines, l => l.Contains("more unreachable CID message(s) suppressed in the last 10 s", StringComparison.Ordinal));
        Assert.Equal(chains, guest.UsedTxCount);
        Assert.Null(guest.DriverFault);
        await RoundTripAsync(guest, _dir.File("vm3.vsock"));
        await BystanderServesAsync();
    }

    /// <summary>Two VMs, CID 3 (the guest under test) and CID 4, at the default log level.</summary>
    private DaemonProcess StartDaemon()
    {
        var daemon = DaemonProcess.StartDll(null,
            "--vm", $"guest-cid=3,socket={_dir.File("vhost3.socket")},uds-path={_dir.File("vm3.vsock")}",
            "--vm", $"guest-cid=4,socket={_dir.File("vhost4.socket")},uds-path={_dir.File("vm4.vsock")}");
        Assert.True(daemon.WaitForLine("device for guest CID 4 listening") && daemon.WaitForLine("device for guest CID 3 listening"),
            "the daemon did not start; stderr: " + daemon.Stderr);
        return daemon;
    }

    private static long Bytes(DaemonProcess daemon) => daemon.StderrLines.Sum(l => (long)Encoding.UTF8.GetByteCount(l) + 1);

    private async Task BystanderServesAsync()
    {
        await using var bystander = SyntheticGuest.Connect(_dir.File("vhost4.socket"));
        await RoundTripAsync(bystander, _dir.File("vm4.vsock"));
    }

    /// <summary>A host client on <paramref name="udsPath"/> reaches a guest listener; a word each way.</summary>
    private static async Task RoundTripAsync(SyntheticGuest guest, string udsPath)
    {
        using var cts = new CancellationTokenSource(Timeout);
        using var listener = guest.Listen(5000);
        using var host = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await host.ConnectAsync(new UnixDomainSocketEndPoint(udsPath), cts.Token);
        await host.SendAsync("CONNECT 5000\nping"u8.ToArray(), cts.Token);
        var stream = await listener.AcceptAsync(cts.Token);
        Assert.Equal("OK 5000\n", Encoding.ASCII.GetString(await host.ReadExactlyAsync("OK 5000\n".Length, cts.Token)));
        Assert.Equal("ping", Encoding.ASCII.GetString(await stream.ReadExactlyAsync(4, cts.Token)));
        await stream.WriteAsync("pong"u8.ToArray(), cts.Token);
        Assert.Equal("pong", Encoding.ASCII.GetString(await host.ReadExactlyAsync(4, cts.Token)));
        await stream.CloseAsync();
    }
}
