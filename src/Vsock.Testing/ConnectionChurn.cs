using Vsock.Testing.Packets;

namespace Vsock.Testing;

/// <summary>
/// Connection set-up and tear-down run inside the driver thread, for benchmarks (as the in-driver
/// applications of <see cref="DriverApplication"/> are for data): an application on another vCPU of a
/// fast guest that accepts (or connects) and closes at once. Each stream is closed as Linux's
/// virtio_transport_close does it (SHUTDOWN RCV|SEND, then the peer's RST; RST at once when the peer has
/// already shut down both ways) and counts once it is done. There is no close timeout: a peer that never
/// answers leaves the count short, and the caller's own timeout reports it. All state is guarded by the
/// guest's lock.
/// </summary>
internal sealed class ConnectionChurn
{
    private readonly SyntheticGuest _guest;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly int _count;
    private readonly GuestListener? _listener;
    private readonly (ulong Cid, uint Port) _peer;
    private int _started;
    private int _done;

    /// <summary>Accepts <paramref name="count"/> streams on <paramref name="listener"/>, then stops listening.</summary>
    public ConnectionChurn(SyntheticGuest guest, int count, GuestListener listener)
    {
        _guest = guest;
        _count = count;
        _listener = listener;
    }

    /// <summary>Connects <paramref name="count"/> times to <paramref name="peerCid"/>:<paramref name="peerPort"/>.</summary>
    public ConnectionChurn(SyntheticGuest guest, int count, ulong peerCid, uint peerPort)
    {
        _guest = guest;
        _count = count;
        _peer = (peerCid, peerPort);
    }

    public Task Completion => _completion.Task;

    /// <summary>Sends the first REQUESTs: <paramref name="concurrency"/> of them, or all if fewer.</summary>
    public void StartConnecting(int concurrency)
    {
        while (_started < Math.Min(concurrency, _count))
            ConnectOne();
        CompleteIfDone();
    }

    /// <summary>A stream of ours was answered with RESPONSE, or our listener answered a REQUEST: close it now.</summary>
    public void OnEstablished(GuestStream stream)
    {
        if (_listener is not null && ++_started == _count)
            _guest.RemoveListener(_listener); // later REQUESTs are refused, as with no listener
        stream.Churn = this;
        stream.UserClosed = true;
        stream.LocalShutdown = VsockWire.ShutdownBoth;
        _guest.SendStreamControl(stream, VsockOp.Shutdown, VsockWire.ShutdownBoth);
    }

    /// <summary>A stream of ours is closed (the peer's RST, or ours after its SHUTDOWN): count it, start the next.</summary>
    public void OnDone()
    {
        _done++;
        if (_listener is null && _started < _count)
            ConnectOne();
        CompleteIfDone();
    }

    public void Fail(string why) => _completion.TrySetException(new GuestStreamClosedException(why));

    private void ConnectOne()
    {
        _started++;
        _guest.StartChurnConnect(this, _peer.Cid, _peer.Port);
    }

    private void CompleteIfDone()
    {
        if (_done >= _count)
            _completion.TrySetResult();
    }
}
