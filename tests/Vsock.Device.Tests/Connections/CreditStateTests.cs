using Vsock.Device.Connections;

namespace Vsock.Device.Tests.Connections;

public class CreditStateTests
{
    [Fact]
    public void Peer_credit_follows_the_reference_cases()
    {
        // vhost-device-vsock test_vsock_conn_credit
        var c = new CreditState(65536);
        Assert.Equal(0u, c.PeerFreeCredit);
        c.UpdatePeer(65536, 0);
        Assert.Equal(65536u, c.PeerFreeCredit);
        c.OnSent(32768);
        Assert.Equal(32768u, c.PeerFreeCredit);
        c.OnSent(32768);
        Assert.Equal(0u, c.PeerFreeCredit);
        c.UpdatePeer(65536, 65536);
        Assert.Equal(65536u, c.PeerFreeCredit);
    }

    [Fact]
    public void Peer_credit_wraps_around_u32()
    {
        var c = new CreditState(65536) { TxCnt = uint.MaxValue - 100, PeerFwdCnt = uint.MaxValue - 100 };
        c.UpdatePeer(262144, uint.MaxValue - 100);
        c.OnSent(1000); // rx_cnt wraps past 2^32
        Assert.True(c.TxCnt < 1000);
        Assert.Equal(262144u - 1000u, c.PeerFreeCredit);
        c.UpdatePeer(262144, unchecked(uint.MaxValue - 100 + 1000));
        Assert.Equal(262144u, c.PeerFreeCredit);
    }

    [Fact]
    public void A_guest_that_shrinks_its_buffer_below_in_flight_data_gets_zero_not_a_wrapped_credit()
    {
        var c = new CreditState(65536);
        c.UpdatePeer(65536, 0);
        c.OnSent(60000);
        c.UpdatePeer(4096, 0);
        Assert.Equal(0u, c.PeerFreeCredit);
    }

    [Fact]
    public void Guest_may_send_up_to_the_advertised_buffer()
    {
        var c = new CreditState(1000);
        Assert.True(c.PeerMaySend(1000));
        Assert.False(c.PeerMaySend(1001));
        c.OnReceived(600);
        Assert.True(c.PeerMaySend(400));
        Assert.False(c.PeerMaySend(401));
        c.OnConsumed(600);
        // Forwarded but not yet advertised: the guest does not know, so it may not use that space.
        Assert.False(c.PeerMaySend(401));
        c.OnAdvertised();
        Assert.True(c.PeerMaySend(1000));
    }

    [Fact]
    public void Guest_may_send_works_across_the_u32_wrap()
    {
        var c = new CreditState(65536) { RecvCnt = uint.MaxValue - 10, FwdCnt = uint.MaxValue - 10, LastAdvertisedFwdCnt = uint.MaxValue - 10 };
        c.OnReceived(65536);
        Assert.False(c.PeerMaySend(1));
        c.OnConsumed(65536);
        c.OnAdvertised();
        Assert.True(c.PeerMaySend(65536));
        Assert.Equal(0u, c.Buffered);
    }

    [Fact]
    public void Credit_update_is_due_when_the_guest_view_of_free_space_is_down_to_a_quarter()
    {
        var c = new CreditState(65536);
        Assert.False(c.ShouldSendCreditUpdate);
        c.OnReceived(40000);
        c.OnConsumed(40000);
        Assert.False(c.ShouldSendCreditUpdate); // guest still sees 25536 free, more than 16384
        c.OnReceived(10000);
        c.OnConsumed(10000);
        Assert.True(c.ShouldSendCreditUpdate); // guest sees 15536 free, we have 65536
        c.OnAdvertised();
        Assert.False(c.ShouldSendCreditUpdate);
    }

    [Fact]
    public void Credit_update_is_due_when_the_guest_has_a_quarter_left_exactly()
    {
        // 64 KiB packets into a 256 KiB buffer: after three the guest sees exactly a quarter free. The update must
        // go now, while it sends the fourth; waiting for "below a quarter" let the guest run dry every window.
        var c = new CreditState(262144);
        for (var i = 0; i < 2; i++)
        {
            c.OnReceived(65536);
            c.OnConsumed(65536);
        }
        Assert.False(c.ShouldSendCreditUpdate); // the guest sees half free
        c.OnReceived(65536);
        c.OnConsumed(65536);
        Assert.True(c.ShouldSendCreditUpdate);
    }

    [Fact]
    public void No_credit_update_when_nothing_was_freed()
    {
        var c = new CreditState(65536);
        c.OnReceived(65536);
        Assert.False(c.ShouldSendCreditUpdate);
    }
}
