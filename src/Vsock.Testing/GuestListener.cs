namespace Vsock.Testing;

/// <summary>A listening port of the synthetic guest: REQUESTs to it are answered with RESPONSE and queued for <see cref="AcceptAsync"/>.</summary>
public sealed class GuestListener : IDisposable
{
    private readonly SyntheticGuest _guest;
    private readonly Queue<GuestStream> _pending = new();
    private readonly AsyncPulse _changed = new();
    private bool _closed;

    internal GuestListener(SyntheticGuest guest, uint port, ushort type)
    {
        _guest = guest;
        Port = port;
        Type = type;
    }

    public uint Port { get; }

    /// <summary>The socket type it accepts (VsockWire.TypeStream or TypeSeqpacket).</summary>
    public ushort Type { get; }

    /// <summary>Set by <see cref="SyntheticGuest.AcceptAndCloseAsync"/>: the driver closes each accepted stream at once.</summary>
    internal ConnectionChurn? Churn { get; set; }

    /// <summary>Connections accepted by the transport and not yet taken.</summary>
    public int PendingCount
    {
        get
        {
            lock (_guest.Sync)
                return _pending.Count;
        }
    }

    public async Task<GuestStream> AcceptAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Task wait;
            lock (_guest.Sync)
            {
                _guest.ThrowIfUnusable();
                ObjectDisposedException.ThrowIf(_closed, this);
                if (_pending.TryDequeue(out var stream))
                    return stream;
                wait = _changed.Wait();
            }
            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    internal void Enqueue(GuestStream stream)
    {
        _pending.Enqueue(stream);
        _changed.Pulse();
    }

    internal void Pulse() => _changed.Pulse();

    /// <summary>Stops listening; connections not yet accepted are reset (as Linux releases a listener's pending children).</summary>
    public void Dispose()
    {
        List<GuestStream> orphans;
        lock (_guest.Sync)
        {
            if (_closed)
                return;
            _closed = true;
            _guest.RemoveListener(this);
            orphans = [.. _pending];
            _pending.Clear();
            _changed.Pulse();
        }
        foreach (var stream in orphans)
            stream.Reset();
    }
}
