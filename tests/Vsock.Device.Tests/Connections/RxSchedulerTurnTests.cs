using Vsock.Device.Backend;
using Vsock.Device.Connections;
using Vsock.Device.Diagnostics;

namespace Vsock.Device.Tests.Connections;

/// <summary>How the scheduler asks its device for RX turns: coalesced, and never lost.</summary>
public sealed class RxSchedulerTurnTests
{
    private sealed class IdleStream(IStreamHost host) : VsockStream(host, 65536)
    {
        public override bool HasRxWork => false;
        public override RxFill FillRx(ref RxTurn turn, uint quantum) => RxFill.Idle;
        public override void OnGuestPacket(ref Vsock.Device.Packets.VsockPacket packet, ref TxTurn turn) { }
        public void Ask() => Host.ScheduleRx(this);
    }

    [Fact]
    public void Requests_are_coalesced_until_the_device_begins_a_turn()
    {
        var requests = 0;
        var scheduler = new RxScheduler(3, DeviceLog.Null, () => requests++, _ => { });
        var a = new IdleStream(scheduler);
        var b = new IdleStream(scheduler);
        a.Ask();
        b.Ask();
        Assert.Equal(1, requests);
        Assert.Equal(2, scheduler.ReadyCount);
    }

    [Fact]
    public void A_turn_that_finds_nothing_to_do_still_lets_the_next_stream_ask_for_one()
    {
        // A turn's message can arrive after the work it was asked for was done by an earlier turn (the device
        // also runs RX turns right after TX turns). Such a turn must re-open requests, or the next stream that
        // gets work waits for ever.
        var requests = 0;
        var scheduler = new RxScheduler(3, DeviceLog.Null, () => requests++, _ => { });
        scheduler.RequestTurn();
        Assert.Equal(1, requests);
        scheduler.BeginTurn(); // the message arrives; nothing is queued
        Assert.False(scheduler.HasWork);
        new IdleStream(scheduler).Ask();
        Assert.Equal(2, requests);
    }
}
