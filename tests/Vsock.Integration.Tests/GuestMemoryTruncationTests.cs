using System.Diagnostics;
using System.Net.Sockets;
using Vsock.Device.Interop;
using Vsock.Testing;
using Xunit.Abstractions;

namespace Vsock.Integration.Tests;

/// <summary>
/// A VMM that shrinks its guest RAM file after SET_MEM_TABLE and then kicks: where the file can be
/// sealed the shrink is refused and the VM carries on; where it cannot, the daemon's access past the
/// new end is caught by the SIGBUS guard and ends that VMM's session. Either way the daemon lives,
/// another VM keeps streaming, and the socket takes a new VMM.
/// </summary>
public sealed class GuestMemoryTruncationTests(ITestOutputHelper output)
{
    private const long ShrunkSize = 4096; // the first page: every ring and buffer lies beyond it

    [Theory]
    [InlineData(GuestMemoryBacking.SealedMemFd)]
    [InlineData(GuestMemoryBacking.SealableMemFd)]
    public async Task A_sealed_file_cannot_be_shrunk_and_the_vm_carries_on(GuestMemoryBacking backing)
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket, SyntheticGuestOptions.Default with { MemoryBacking = backing });
        // QEMU sealed its memfd itself; an unsealed one was sealed by the daemon at SET_MEM_TABLE.
        var seals = guest.MemorySeals!.Value;
        Assert.True((seals & FileSeals.Shrink) != 0, $"guest RAM seals after SET_MEM_TABLE: {seals}");
        if (backing == GuestMemoryBacking.SealableMemFd)
            Assert.Equal(FileSeals.Shrink, seals);

        Assert.False(guest.TryShrinkMemory(ShrunkSize), "the guest RAM file could be shrunk");
        guest.KickTx();
        await Scenario.VmServesAsync(guest, daemon[0].UdsPath!);
        Scenario.AssertClean(guest);
    }

    [Theory]
    [InlineData(GuestMemoryBacking.UnsealableMemFd)]
    [InlineData(GuestMemoryBacking.ShmFile)]
    public async Task An_unsealable_file_shrunk_under_the_daemon_ends_that_vmms_session_only(GuestMemoryBacking backing)
    {
        await using var daemon = await InProcessDaemon.StartAsync(vmCount: 2);
        await using var bystander = SyntheticGuest.Connect(daemon[1].Socket);
        await using var busy = await EndlessStream.StartAsync(bystander, daemon[1].UdsPath!);
        await using var victim = SyntheticGuest.Connect(daemon[0].Socket, SyntheticGuestOptions.Default with { MemoryBacking = backing });
        await Scenario.VmServesAsync(victim, daemon[0].UdsPath!);
        var repairedBefore = SigbusGuard.RepairedTotal;

        Assert.True(victim.TryShrinkMemory(ShrunkSize), "the unsealable guest RAM file refused to shrink");
        var clock = Stopwatch.StartNew();
        victim.KickTx(); // the daemon reads the TX ring, past the new end of the file
        Assert.True(victim.WaitForVhostUserHangup(Scenario.Timeout), "the daemon kept the VMM that truncated its guest memory");
        output.WriteLine($"{backing}: VMM disconnected {clock.Elapsed.TotalMilliseconds:F1} ms after the kick; SIGBUS faults repaired: {SigbusGuard.RepairedTotal - repairedBefore}");
        Assert.True(SigbusGuard.RepairedTotal > repairedBefore, "no SIGBUS was repaired: the daemon never touched the truncated memory");

        Assert.True(await busy.AdvancesAsync(1 << 20, Scenario.Timeout), "the other VM stopped streaming");
        await Scenario.VmServesAsync(bystander, daemon[1].UdsPath!);
        await using var fresh = SyntheticGuest.Connect(daemon[0].Socket, SyntheticGuestOptions.Default with { MemoryBacking = backing });
        await Scenario.VmServesAsync(fresh, daemon[0].UdsPath!);
        Scenario.AssertClean(fresh);
        Scenario.AssertClean(bystander);
    }

    /// <summary>
    /// The same shrink, but the guest never kicks: the daemon first touches the truncated memory while its loop
    /// spins and polls the rings after other work (here: a host client accepted on uds-path that never sends its
    /// CONNECT line). The poll reads avail.idx from the zero page the guard put there and finds the ring broken; the
    /// session must end all the same, not wait for a kick or a request that may never come.
    /// </summary>
    [Fact]
    public async Task Memory_lost_under_a_polling_loop_ends_that_vmms_session_without_a_kick()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var victim = SyntheticGuest.Connect(daemon[0].Socket, SyntheticGuestOptions.Default with { MemoryBacking = GuestMemoryBacking.UnsealableMemFd });
        await Scenario.VmServesAsync(victim, daemon[0].UdsPath!);
        var repairedBefore = SigbusGuard.RepairedTotal;

        Assert.True(victim.TryShrinkMemory(ShrunkSize), "the unsealable guest RAM file refused to shrink");
        var clock = Stopwatch.StartNew();
        using var silent = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        silent.Connect(new UnixDomainSocketEndPoint(daemon[0].UdsPath!)); // wakes the VM's loop; no CONNECT line follows
        Assert.True(victim.WaitForVhostUserHangup(Scenario.Timeout), "the daemon kept the VMM whose memory it found truncated while polling");
        output.WriteLine($"VMM disconnected {clock.Elapsed.TotalMilliseconds:F1} ms after the host client connected; SIGBUS faults repaired: {SigbusGuard.RepairedTotal - repairedBefore}");
        Assert.True(SigbusGuard.RepairedTotal > repairedBefore, "no SIGBUS was repaired: the daemon never touched the truncated memory");

        await using var fresh = SyntheticGuest.Connect(daemon[0].Socket, SyntheticGuestOptions.Default with { MemoryBacking = GuestMemoryBacking.UnsealableMemFd });
        await Scenario.VmServesAsync(fresh, daemon[0].UdsPath!);
        Scenario.AssertClean(fresh);
    }
}
