using Vsock.Device.Backend;
using Vsock.Device.Diagnostics;
using Vsock.Device.Packets;

namespace Vsock.Device.Connections;

/// <summary>
/// A stream between our guest and a sibling VM's guest (same group). The two guests run the stream protocol end to
/// end: packets pass unchanged, each device delivering the other's packets into its own guest's RX ring. What the
/// device adds (unlike the reference): the receiving guest's credit is enforced on the sending guest (this device
/// sees both directions), so what waits here for our guest is bounded by the buffer our guest advertised; a payload
/// larger than one RX buffer is split over several instead of truncated; and a violation resets both ends.
///
/// Inbound packets (from the sibling) wait in a FIFO of pooled payloads until our guest has RX buffers; outbound
/// payloads are copied once out of our guest's memory for the hop to the sibling's thread.
/// </summary>
public sealed class SiblingStream : VsockStream
{
    /// <summary>Packets waiting for our guest; control packets count too, so a flood of them is bounded.</summary>
    public const int MaxInbound = 1024;

    private readonly ISiblingLink _link;
    private readonly Queue<Inbound> _inbound = new();
    private uint _headOffset;

    private struct Inbound
    {
        public VsockHeader Header;
        public byte[]? Payload;
    }

    public SiblingStream(IStreamHost host, ISiblingLink link, ConnectionKey key, ushort type)
        : base(host, bufAlloc: 0, type)
    {
        _link = link;
        Open(key);
    }

    /// <summary>A RESPONSE passed (either way): the two guests set the stream up, so this VM counts it opened.</summary>
    private void OnResponse()
    {
        if (Has(StreamStatus.Established))
            return;
        Set(StreamStatus.Established);
        Host.Counters.StreamsOpened++;
    }

    /// <summary>An RST passed (either way) before any RESPONSE: the REQUEST was refused.</summary>
    private void OnRstBeforeResponse()
    {
        if (!Has(StreamStatus.Established))
            Host.Counters.StreamsRefused++;
    }

    /// <summary>Packets waiting for our guest.</summary>
    public int InboundCount => _inbound.Count;

    public override bool HasRxWork => !Has(StreamStatus.Finished) && (_inbound.Count > 0 || PendingOps != RxOps.None);

    /// <summary>A packet from the sibling for our guest; the payload (pooled) is ours now.</summary>
    public void OnPeerPacket(in VsockHeader header, byte[]? payload)
    {
        if (Has(StreamStatus.Finished) || (PendingOps & RxOps.Rst) != 0)
        {
            Return(payload);
            return;
        }
        if (_inbound.Count >= MaxInbound)
        {
            Return(payload);
            Host.Log.Warning(LogTopic.Limit, $"{Key}: {MaxInbound} packets from the sibling wait for our guest; resetting");
            ResetBoth();
            return;
        }
        // The sibling guest's buffer state bounds what our guest may send it.
        Credit.UpdatePeer(header.BufAlloc, header.FwdCnt);
        if (header.Op == VsockOp.Response)
            OnResponse();
        _inbound.Enqueue(new Inbound { Header = header, Payload = payload });
        Schedule();
    }

    public override RxFill FillRx(ref RxTurn turn, uint quantum)
    {
        if (Has(StreamStatus.Finished))
            return RxFill.Idle;
        uint sent = 0;
        while (_inbound.TryPeek(out var next))
        {
            if (sent >= quantum)
                return RxFill.More;
            var h = next.Header;
            if (next.Payload is null || h.Len == 0)
            {
                if (!turn.TryWriteControl(h))
                    return RxFill.OutOfBuffers;
                _inbound.Dequeue();
                if (h.Op == VsockOp.Rst)
                {
                    OnRstBeforeResponse();
                    Finish();
                    return RxFill.Idle;
                }
                continue;
            }
            // Split over as many RX buffers as it takes; SEQPACKET end-of-message flags only on the last part.
            var remaining = h.Len - _headOffset;
            const uint endFlags = VsockSeqFlags.Eom | VsockSeqFlags.Eor;
            var part = h;
            part.Flags &= ~endFlags;
            if (!turn.TryWriteData(part, next.Payload.AsSpan((int)_headOffset, (int)remaining), out var written, h.Flags & endFlags))
                return RxFill.OutOfBuffers;
            if (written == remaining)
            {
                _inbound.Dequeue();
                _headOffset = 0;
                Return(next.Payload);
            }
            else
            {
                _headOffset += (uint)written;
            }
            sent += (uint)written;
        }
        if ((PendingOps & RxOps.Rst) != 0)
            return TrySendRst(ref turn) ? RxFill.Idle : RxFill.OutOfBuffers;
        return RxFill.Idle;
    }

    public override void OnGuestPacket(ref VsockPacket packet, ref TxTurn turn)
    {
        var h = packet.Header;
        if (Has(StreamStatus.Finished) || (PendingOps & RxOps.Rst) != 0)
            return;
        byte[]? payload = null;
        switch (h.Op)
        {
            case VsockOp.Rw when h.Len > 0:
                if (h.Len > Credit.PeerFreeCredit)
                {
                    Host.Log.Warning(LogTopic.CreditViolation,
                        $"{Key}: guest CID {Host.GuestCid} sent {h.Len} bytes beyond the credit of CID {Key.PeerCid}; resetting the stream");
                    ResetBoth();
                    return;
                }
                Credit.OnSent(h.Len);
                payload = PayloadPool.Rent((int)h.Len);
                packet.CopyDataTo(payload.AsSpan(0, (int)h.Len));
                break;
            case VsockOp.Response:
                OnResponse();
                break;
            case VsockOp.Rst:
                OnRstBeforeResponse();
                _link.Send(this, h, null);
                Finish();
                return;
        }
        _link.Send(this, h, payload);
    }

    /// <summary>Our guest gets an RST (after what is queued for it) and so does the sibling.</summary>
    public void ResetBoth()
    {
        if (Has(StreamStatus.Finished))
            return;
        _link.Send(this, RstToPeer(), null);
        DropInbound();
        Reset();
    }

    /// <summary>The sibling's guest or device went away: our guest gets an RST, the sibling is not told.</summary>
    public void PeerGone()
    {
        DropInbound();
        Reset();
    }

    private VsockHeader RstToPeer() => new()
    {
        SrcCid = Host.GuestCid,
        DstCid = Key.PeerCid,
        SrcPort = Key.GuestPort,
        DstPort = Key.PeerPort,
        Type = Type,
        Op = VsockOp.Rst,
    };

    private void DropInbound()
    {
        while (_inbound.TryDequeue(out var entry))
            Return(entry.Payload);
        _headOffset = 0;
    }

    protected override void OnFinished() => DropInbound();

    private static void Return(byte[]? payload)
    {
        if (payload is not null)
            PayloadPool.Return(payload);
    }
}
