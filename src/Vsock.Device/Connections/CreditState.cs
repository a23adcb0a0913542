namespace Vsock.Device.Connections;

/// <summary>
/// virtio-vsock credit accounting for one stream end (virtio 1.2 §5.10.6.3), in wrapping u32 arithmetic as the
/// spec and Linux do. "Ours" is the receive buffer we advertise (<see cref="BufAlloc"/>: for a host stream the
/// TX buffer of tx-buffer-size bytes that holds guest data until the host socket takes it); "peer" is the other
/// end, whose buffer bounds what we may send it (the guest, or for a sibling stream the other VM's guest).
/// </summary>
public struct CreditState
{
    /// <summary>Our buffer size, advertised to the peer in every packet.</summary>
    public uint BufAlloc;
    /// <summary>Bytes of the peer's data we have consumed (written to the host socket), advertised as fwd_cnt.</summary>
    public uint FwdCnt;
    /// <summary>The fwd_cnt the peer last saw from us.</summary>
    public uint LastAdvertisedFwdCnt;
    /// <summary>Payload bytes received from the peer (its tx_cnt as far as we know).</summary>
    public uint RecvCnt;
    /// <summary>Payload bytes we have sent to the peer (our tx_cnt).</summary>
    public uint TxCnt;
    public uint PeerBufAlloc;
    public uint PeerFwdCnt;

    public CreditState(uint bufAlloc)
    {
        this = default;
        BufAlloc = bufAlloc;
    }

    /// <summary>Every packet from the peer carries its buffer state (spec: MUST be valid in every packet).</summary>
    public void UpdatePeer(uint bufAlloc, uint fwdCnt)
    {
        PeerBufAlloc = bufAlloc;
        PeerFwdCnt = fwdCnt;
    }

    /// <summary>
    /// How many payload bytes the peer can take now. In flight is (TxCnt - PeerFwdCnt); a peer that shrinks
    /// buf_alloc below what is in flight gets 0, not a wrapped huge number (the reference wraps here).
    /// </summary>
    public readonly uint PeerFreeCredit
    {
        get
        {
            var inFlight = unchecked(TxCnt - PeerFwdCnt);
            return inFlight >= PeerBufAlloc ? 0 : PeerBufAlloc - inFlight;
        }
    }

    /// <summary>Bytes of the peer's data held by us (received, not yet consumed).</summary>
    public readonly uint Buffered => unchecked(RecvCnt - FwdCnt);

    /// <summary>
    /// True if the peer, respecting credit, may send <paramref name="length"/> more bytes: what it has sent
    /// beyond the last fwd_cnt we told it stays within buf_alloc.
    /// </summary>
    public readonly bool PeerMaySend(uint length) =>
        (ulong)unchecked(RecvCnt - LastAdvertisedFwdCnt) + length <= BufAlloc;

    public void OnReceived(uint length) => RecvCnt = unchecked(RecvCnt + length);

    public void OnConsumed(uint length) => FwdCnt = unchecked(FwdCnt + length);

    public void OnSent(uint payloadLength) => TxCnt = unchecked(TxCnt + payloadLength);

    /// <summary>Called for every packet we stamp for the peer: it now knows our current fwd_cnt.</summary>
    public void OnAdvertised() => LastAdvertisedFwdCnt = FwdCnt;

    /// <summary>
    /// True when the peer's view of our free space is down to a quarter of the buffer while we have freed space it
    /// does not know about (the reference's rule, but at a quarter, not under it: a guest writing 64 KiB packets
    /// into a 256 KiB buffer would otherwise hear of freed space only after its fourth packet, with nothing left to
    /// send meanwhile). Half was measured: twice the CREDIT_UPDATE packets and guest notifications, and no faster
    /// (docs/BENCHMARKS.md).
    /// </summary>
    public readonly bool ShouldSendCreditUpdate
    {
        get
        {
            if (FwdCnt == LastAdvertisedFwdCnt)
                return false;
            var peerViewInFlight = unchecked(RecvCnt - LastAdvertisedFwdCnt);
            var peerViewFree = peerViewInFlight >= BufAlloc ? 0 : BufAlloc - peerViewInFlight;
            return peerViewFree <= BufAlloc / 4;
        }
    }
}
