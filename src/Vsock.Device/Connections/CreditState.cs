namespace Vsock.Device.Connections;

/// <summary>
/// virtio-vsock credit accounting for one stream (virtio 1.2 §5.10.6.3), in wrapping u32 arithmetic
/// as the spec and Linux do. "Ours" is the host side's receive buffer (the TX buffer of
/// tx-buffer-size bytes that holds guest data until the host socket takes it); "peer" is the guest.
/// </summary>
public struct CreditState
{
    /// <summary>Our buffer size, advertised to the guest in every packet.</summary>
    public uint BufAlloc;
    /// <summary>Bytes of guest data we have handed to the host socket (advertised as fwd_cnt).</summary>
    public uint FwdCnt;
    /// <summary>The fwd_cnt the guest last saw from us.</summary>
    public uint LastAdvertisedFwdCnt;
    /// <summary>Bytes of guest payload we have received (guest's tx_cnt as far as we know).</summary>
    public uint RecvCnt;
    /// <summary>Payload bytes we have sent to the guest (our tx_cnt toward it).</summary>
    public uint RxCnt;
    public uint PeerBufAlloc;
    public uint PeerFwdCnt;

    public CreditState(uint bufAlloc)
    {
        this = default;
        BufAlloc = bufAlloc;
    }

    /// <summary>Every guest packet carries its buffer state (spec: MUST be valid in every packet).</summary>
    public void UpdatePeer(uint bufAlloc, uint fwdCnt)
    {
        PeerBufAlloc = bufAlloc;
        PeerFwdCnt = fwdCnt;
    }

    /// <summary>
    /// How many payload bytes the guest can take now. In flight is (RxCnt - PeerFwdCnt); a guest
    /// that shrinks buf_alloc below what is in flight gets 0, not a wrapped huge number (the
    /// reference wraps here).
    /// </summary>
    public readonly uint PeerFreeCredit
    {
        get
        {
            var inFlight = unchecked(RxCnt - PeerFwdCnt);
            return inFlight >= PeerBufAlloc ? 0 : PeerBufAlloc - inFlight;
        }
    }

    /// <summary>Bytes of guest data held by us (received, not yet written to the host socket).</summary>
    public readonly uint Buffered => unchecked(RecvCnt - FwdCnt);

    /// <summary>
    /// True if the guest, respecting credit, may send <paramref name="length"/> more bytes: what it
    /// has sent beyond the last fwd_cnt we told it stays within buf_alloc.
    /// </summary>
    public readonly bool GuestMaySend(uint length) =>
        (ulong)unchecked(RecvCnt - LastAdvertisedFwdCnt) + length <= BufAlloc;

    public void OnReceivedFromGuest(uint length) => RecvCnt = unchecked(RecvCnt + length);

    public void OnForwarded(uint length) => FwdCnt = unchecked(FwdCnt + length);

    public void OnSentToGuest(uint payloadLength) => RxCnt = unchecked(RxCnt + payloadLength);

    /// <summary>Called for every packet we stamp for the guest: it now knows our current fwd_cnt.</summary>
    public void OnAdvertised() => LastAdvertisedFwdCnt = FwdCnt;

    /// <summary>
    /// True when the guest's view of our free space has fallen under a quarter of the buffer while we
    /// have freed space it does not know about (the reference's rule). Half was tried: twice the
    /// CREDIT_UPDATE packets and guest notifications, and no faster (docs/BENCHMARKS.md, session 2).
    /// </summary>
    public readonly bool ShouldSendCreditUpdate
    {
        get
        {
            if (FwdCnt == LastAdvertisedFwdCnt)
                return false;
            var guestViewInFlight = unchecked(RecvCnt - LastAdvertisedFwdCnt);
            var guestViewFree = guestViewInFlight >= BufAlloc ? 0 : BufAlloc - guestViewInFlight;
            return guestViewFree < BufAlloc / 4;
        }
    }
}
