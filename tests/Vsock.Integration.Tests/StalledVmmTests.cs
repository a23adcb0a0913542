using System.Diagnostics;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Vsock.Actors.Device;
using Vsock.Device.Interop;
using Vsock.Testing;
using Vsock.Testing.VhostUser;
using Xunit.Abstractions;
using VhostUserReplyQueue = Vsock.Device.VhostUser.VhostUserReplyQueue;
using VmmTimeouts = Vsock.Device.VhostUser.VmmTimeouts;

namespace Vsock.Integration.Tests;

/// <summary>
/// A VMM that stops halfway (a half-sent request, a byte now and then, replies it never reads) may not
/// slow its own guest's streams, hold its device longer than <see cref="VmmTimeouts"/> allows, keep the
/// device from stopping, or touch another VM.
/// </summary>
public sealed class StalledVmmTests(ITestOutputHelper output)
{
    private static readonly TimeSpan PartialLimit = VmmTimeouts.Default.PartialMessage;
    private static readonly TimeSpan UnreadLimit = VmmTimeouts.Default.UnreadReplies;

    [Fact]
    public async Task A_vmm_that_stalls_mid_request_does_not_slow_its_guests_streams()
    {
        await using var daemon = await InProcessDaemon.StartAsync();
        await using var guest = SyntheticGuest.Connect(daemon[0].Socket, SyntheticGuestOptions.Default with { RecordReceived = false });
        await using var stream = await EndlessStream.StartAsync(guest, daemon[0].UdsPath!);
        Assert.True(await stream.AdvancesAsync(1 << 20, Scenario.Timeout), "the stream does not move");

        var before = await stream.MeasureAsync(TimeSpan.FromSeconds(1.5));
        var request = new byte[VhostUserClient.HeaderSize];
        VhostUserClient.WriteHeader(request, VhostUserRequest.GetFeatures, VhostUserFlags.Version, 0);
        var stall = Stopwatch.StartNew();
        guest.SendRawVhostUserBytes(request.AsSpan(0, 6)); // half a header, then nothing for 3 s
        await Task.Delay(TimeSpan.FromSeconds(0.3));
        var during = await stream.MeasureAsync(TimeSpan.FromSeconds(2));
        await Task.Delay(TimeSpan.FromSeconds(3) - stall.Elapsed);
        guest.SendRawVhostUserBytes(request.AsSpan(6));

        // The session survived the stall (3 s < the limit) and answers the request it finally got.
        var reply = guest.ReceiveReply();
        Assert.NotNull(reply);
        Assert.Equal(VhostUserRequest.GetFeatures, reply.Request);
        Assert.Equal(guest.OfferedFeatures, BitConverter.ToUInt64(reply.Payload));
        output.WriteLine($"guest receive rate: {before / 1e6:F1} MB/s before the stall, {during / 1e6:F1} MB/s during it ({during / before:P0})");
        Assert.True(during >= before / 2, $"throughput fell from {before / 1e6:F1} MB/s to {during / 1e6:F1} MB/s while the VMM stalled");
        Assert.True(await stream.AdvancesAsync(1 << 20, Scenario.Timeout), "the stream stopped after the stall");
        Scenario.AssertClean(guest);
    }

    [Fact]
    public async Task A_vmm_that_trickles_a_byte_every_100_ms_is_cut_off_at_the_deadline_of_its_first_byte()
    {
        await using var daemon = await InProcessDaemon.StartAsync(vmCount: 2);
        await using var bystander = SyntheticGuest.Connect(daemon[1].Socket);
        await using var busy = await EndlessStream.StartAsync(bystander, daemon[1].UdsPath!);

        // SET_CONFIG announcing 200 payload bytes: at 10 bytes a second it would take 21 s to arrive.
        var request = new byte[VhostUserClient.HeaderSize + 200];
        VhostUserClient.WriteHeader(request, VhostUserRequest.SetConfig, VhostUserFlags.Version, 200);
        using var vmm = VhostUserClient.Connect(daemon[0].Socket, Scenario.Timeout);
        var clock = Stopwatch.StartNew();
        var sent = 0;
        var hungUp = false;
        while (!hungUp && clock.Elapsed < PartialLimit + TimeSpan.FromSeconds(5) && sent < request.Length)
        {
            try
            {
                vmm.SendRaw(request.AsSpan(sent++, 1));
            }
            catch (LinuxException e) when (e.Errno is Errno.EPIPE or Errno.ECONNRESET)
            {
                hungUp = true;
                break;
            }
            hungUp = vmm.WaitForHangup(TimeSpan.FromMilliseconds(100));
        }
        var cutOff = clock.Elapsed;
        output.WriteLine($"disconnected {cutOff.TotalSeconds:F2} s after the first byte, {sent} bytes in");
        Assert.True(hungUp, $"the daemon kept a VMM that trickled {sent} bytes over {cutOff.TotalSeconds:F1} s");
        Assert.InRange(cutOff, PartialLimit - TimeSpan.FromMilliseconds(200), PartialLimit + TimeSpan.FromSeconds(2));

        Assert.True(await busy.AdvancesAsync(1 << 20, Scenario.Timeout), "the other VM stopped streaming");
        await using var fresh = SyntheticGuest.Connect(daemon[0].Socket);
        await Scenario.VmServesAsync(fresh, daemon[0].UdsPath!);
        Scenario.AssertClean(fresh);
        Scenario.AssertClean(bystander);
    }

    [Fact]
    public async Task A_vmm_that_floods_requests_and_never_reads_a_reply_is_disconnected_and_the_other_vm_keeps_working()
    {
        await using var daemon = await InProcessDaemon.StartAsync(vmCount: 2);
        await using var bystander = SyntheticGuest.Connect(daemon[1].Socket);
        await using var busy = await EndlessStream.StartAsync(bystander, daemon[1].UdsPath!);

        using var vmm = VhostUserClient.Connect(daemon[0].Socket, Scenario.Timeout);
        var clock = Stopwatch.StartNew();
        var requests = await Task.Run(() =>
        {
            var n = 0;
            try
            {
                while (clock.Elapsed < Scenario.Timeout)
                {
                    vmm.Send(VhostUserRequest.GetFeatures, default);
                    n++;
                }
            }
            catch (LinuxException e) when (e.Errno is Errno.EPIPE or Errno.ECONNRESET)
            {
                return n; // the daemon hung up on us
            }
            return -1;
        }).WaitAsync(2 * Scenario.Timeout);
        output.WriteLine($"disconnected after {requests} requests whose replies it never read, {clock.Elapsed.TotalMilliseconds:F0} ms");
        Assert.True(requests > 0, "the daemon kept a VMM that never read its replies");
        Assert.True(vmm.WaitForHangup(Scenario.Timeout));

        Assert.True(await busy.AdvancesAsync(1 << 20, Scenario.Timeout), "the other VM stopped streaming");
        await Scenario.VmServesAsync(bystander, daemon[1].UdsPath!);
        await using var fresh = SyntheticGuest.Connect(daemon[0].Socket);
        await Scenario.VmServesAsync(fresh, daemon[0].UdsPath!);
        Scenario.AssertClean(fresh);
    }

    [Fact]
    public async Task A_vmm_that_stops_reading_with_a_few_replies_waiting_is_disconnected_at_the_unread_replies_deadline()
    {
        await using var daemon = await InProcessDaemon.StartAsync(vmCount: 2);
        await using var bystander = SyntheticGuest.Connect(daemon[1].Socket);
        using var vmm = VhostUserClient.Connect(daemon[0].Socket, Scenario.Timeout);

        // Enough requests to fill the daemon's socket buffer with replies and leave a few queued in the
        // daemon, fewer than its queue bound: only the deadline can end this session.
        var fit = RepliesThatFitInASocketBuffer();
        for (var i = 0; i < fit + VhostUserReplyQueue.MaxReplies * 3 / 4; i++)
            vmm.Send(VhostUserRequest.GetFeatures, default);
        var clock = Stopwatch.StartNew();
        Assert.False(vmm.WaitForHangupWithoutReading(UnreadLimit - TimeSpan.FromMilliseconds(500)), "disconnected before the deadline");
        Assert.True(vmm.WaitForHangupWithoutReading(TimeSpan.FromSeconds(3)), "still connected well after the deadline");
        output.WriteLine($"{fit} replies fit in the socket; disconnected {clock.Elapsed.TotalSeconds:F2} s after the last request");

        await Scenario.VmServesAsync(bystander, daemon[1].UdsPath!);
        await using var fresh = SyntheticGuest.Connect(daemon[0].Socket);
        await Scenario.VmServesAsync(fresh, daemon[0].UdsPath!);
    }

    public enum Stall
    {
        MidRequest,
        RepliesUnread,
    }

    [Theory]
    [InlineData(Stall.MidRequest)]
    [InlineData(Stall.RepliesUnread)]
    public async Task A_device_whose_vmm_stalls_stops_promptly(Stall stall)
    {
        await using var daemon = await InProcessDaemon.StartAsync(vmCount: 2);
        await using var bystander = SyntheticGuest.Connect(daemon[1].Socket);
        await using var victim = SyntheticGuest.Connect(daemon[0].Socket);
        if (stall == Stall.MidRequest)
        {
            victim.SendRawVhostUserBytes(new byte[] { 1, 0, 0, 0, 1 });
        }
        else
        {
            var fit = RepliesThatFitInASocketBuffer();
            for (var i = 0; i < fit + VhostUserReplyQueue.MaxReplies / 2; i++)
                victim.SendRequest(VhostUserRequest.GetFeatures, default, default, needReply: false);
        }
        await Task.Delay(200); // the device has read what there was and is now waiting on the VMM

        var device = await CurrentDeviceAsync(daemon, daemon[0].GuestCid);
        var clock = Stopwatch.StartNew();
        Assert.True(await device.GracefulStop(TimeSpan.FromSeconds(5)), "the device did not stop");
        output.WriteLine($"device stopped in {clock.Elapsed.TotalMilliseconds:F0} ms with its VMM stalled ({stall})");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"stopping took {clock.Elapsed.TotalMilliseconds:F0} ms");
        Assert.True(victim.WaitForVhostUserHangup(Scenario.Timeout), "the stopped device left its VMM connected");

        await Scenario.VmServesAsync(bystander, daemon[1].UdsPath!);
        // The supervisor starts a fresh device, which serves a new VMM.
        await using var fresh = SyntheticGuest.Connect(daemon[0].Socket);
        await Scenario.VmServesAsync(fresh, daemon[0].UdsPath!);
    }

    /// <summary>How many 20-byte replies (GET_FEATURES) a fresh unix socket takes before a send would block.</summary>
    private static int RepliesThatFitInASocketBuffer()
    {
        var (a, b) = UnixSocket.Pair();
        using (a)
        using (b)
        {
            var reply = new byte[VhostUserClient.HeaderSize + 8];
            var count = 0;
            while (a.TrySend(reply) == reply.Length)
                count++;
            return count;
        }
    }

    private static async Task<IActorRef> CurrentDeviceAsync(InProcessDaemon daemon, ulong cid)
    {
        var registry = daemon.Services.GetRequiredService<ActorRegistry>();
        var devices = await registry.GetAsync<VsockDevicesActor>();
        var supervisor = await devices.Ask<IActorRef>(new VsockDevicesActor.GetVm(cid), TimeSpan.FromSeconds(5));
        var current = await supervisor.Ask<VmSupervisor.CurrentDevice>(VmSupervisor.GetDevice.Instance, TimeSpan.FromSeconds(5));
        return current.Device ?? throw new InvalidOperationException($"no device for CID {cid}");
    }
}
