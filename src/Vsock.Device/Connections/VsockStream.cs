using Vsock.Device.Backend;
using Vsock.Device.Packets;

namespace Vsock.Device.Connections;

/// <summary>
/// One stream of a VM's guest (the design card's "connection": credit state, RX ops, and for host streams the TX
/// buffer), whatever is at the other end: a host socket (<see cref="HostStream"/>) or a sibling VM
/// (<see cref="SiblingStream"/>).
///
/// Pulled, not pushed: a stream never sends a packet on its own. It records what it owes the guest (its
/// <see cref="RxOps"/>, and whether its peer has data) and asks its <see cref="IStreamHost"/> for a turn; when the
/// guest has RX buffers the device lends them with <see cref="FillRx"/>. The guest's packets for the stream reach
/// it in the device's TX turn through <see cref="OnGuestPacket"/>. Both calls lend guest memory for their length
/// only, which is safe because the device, its streams and their owners all run on the VM's one event-loop thread.
/// </summary>
public abstract class VsockStream
{
    protected VsockStream(IStreamHost host, uint bufAlloc, ushort type = VsockType.Stream)
    {
        Host = host ?? throw new ArgumentNullException(nameof(host));
        Credit = new CreditState(bufAlloc);
        Type = type;
    }

    protected IStreamHost Host { get; }

    /// <summary>The stream's key; default until it is opened.</summary>
    public ConnectionKey Key { get; private set; }

    /// <summary>VIRTIO_VSOCK_TYPE_STREAM or _SEQPACKET.</summary>
    public ushort Type { get; }

    public StreamStatus Status { get; private set; }

    /// <summary>Control packets owed to the guest.</summary>
    public RxOps PendingOps { get; protected set; }

    protected CreditState Credit;

    /// <summary>The credit state (read-only view, for tests and diagnostics).</summary>
    public CreditState CreditSnapshot => Credit;

    public bool Has(StreamStatus bits) => (Status & bits) != 0;

    protected void Set(StreamStatus bits) => Status |= bits;

    protected void Clear(StreamStatus bits) => Status &= ~bits;

    internal void MarkRxQueued(bool queued)
    {
        if (queued)
            Status |= StreamStatus.RxQueued;
        else
            Status &= ~StreamStatus.RxQueued;
    }

    /// <summary>True if a turn at the RX ring would send something now.</summary>
    public abstract bool HasRxWork { get; }

    /// <summary>
    /// Sends what the stream owes the guest into the lent RX ring: at most about <paramref name="quantum"/> payload
    /// bytes, so one busy stream cannot starve the others (the device goes round-robin).
    /// </summary>
    public abstract RxFill FillRx(ref RxTurn turn, uint quantum);

    /// <summary>
    /// A packet the guest sent on this stream, still in guest memory (lent for this call; payloads for a host socket
    /// may be gathered into <paramref name="turn"/> and written at the end of the turn). Must not throw for
    /// anything a guest can send.
    /// </summary>
    public abstract void OnGuestPacket(ref VsockPacket packet, ref TxTurn turn);

    /// <summary>Gives the stream its key: it is now in the device's table.</summary>
    protected void Open(ConnectionKey key)
    {
        Key = key;
        Set(StreamStatus.Open);
    }

    /// <summary>
    /// Ends the stream with an RST to the guest (sent on its next turn at the RX ring). A stream the guest never
    /// heard of (no key yet) just finishes.
    /// </summary>
    public virtual void Reset()
    {
        if (Has(StreamStatus.Finished))
            return;
        if (!Has(StreamStatus.Open))
        {
            Finish();
            return;
        }
        PendingOps = RxOps.Rst;
        Schedule();
    }

    /// <summary>The stream is over: the device drops it. Its owner releases what it holds.</summary>
    protected void Finish()
    {
        if (Has(StreamStatus.Finished))
            return;
        Set(StreamStatus.Finished);
        PendingOps = RxOps.None;
        OnFinished();
        Host.StreamFinished(this);
    }

    /// <summary>Marks the stream finished without telling the host (its owner stopped: the device finds out from that).</summary>
    protected void Abandon()
    {
        Set(StreamStatus.Finished);
        PendingOps = RxOps.None;
        OnFinished();
    }

    /// <summary>Releases what the stream holds for the guest (buffered data); called once when it finishes.</summary>
    protected virtual void OnFinished()
    {
    }

    /// <summary>Asks for a turn at the RX ring if there is something to send.</summary>
    protected void ScheduleIfWork()
    {
        if (HasRxWork)
            Schedule();
    }

    protected void Schedule()
    {
        if (!Has(StreamStatus.RxQueued | StreamStatus.Finished))
            Host.ScheduleRx(this);
    }

    /// <summary>A header from our end of the stream to the guest, carrying our credit.</summary>
    protected VsockHeader Stamp(ushort op, uint flags = 0) => new()
    {
        SrcCid = Key.PeerCid,
        DstCid = Host.GuestCid,
        SrcPort = Key.PeerPort,
        DstPort = Key.GuestPort,
        Type = Type,
        Op = op,
        Flags = flags,
        BufAlloc = Credit.BufAlloc,
        FwdCnt = Credit.FwdCnt,
    };

    /// <summary>Writes one control packet; false if the guest has no RX buffer (the op stays pending).</summary>
    protected bool TrySend(ref RxTurn turn, ushort op, uint flags = 0)
    {
        if (!turn.TryWriteControl(Stamp(op, flags)))
            return false;
        Credit.OnAdvertised();
        return true;
    }

    /// <summary>Sends the pending RST (it pre-empts everything else) and finishes. False if no RX buffer.</summary>
    protected bool TrySendRst(ref RxTurn turn)
    {
        if (!TrySend(ref turn, VsockOp.Rst))
            return false;
        // Counted by how the stream ends: a REQUEST answered with RST is a refusal; an RST that answers the guest's
        // own close (SHUTDOWN both ways) is the protocol's normal end; any other RST on a stream that was up is a reset.
        const StreamStatus guestClosed = StreamStatus.GuestSendShut | StreamStatus.GuestReceiveShut;
        if (!Has(StreamStatus.Established))
            Host.Counters.StreamsRefused++;
        else if ((Status & guestClosed) != guestClosed)
            Host.Counters.StreamsReset++;
        Finish();
        return true;
    }

    public override string ToString() => $"{GetType().Name} {Key} {Status}";
}
