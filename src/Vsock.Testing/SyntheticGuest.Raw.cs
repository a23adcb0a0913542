using System.Buffers.Binary;
using Vsock.Testing.Packets;

namespace Vsock.Testing;

// Raw access for hostile-guest tests: arbitrary descriptor chains, unchecked packets, guest memory.
public sealed partial class SyntheticGuest
{
    private readonly HashSet<ushort> _rawRxHeads = [];
    private readonly List<(ushort Head, uint UsedLength)> _rawRxUsed = [];
    private bool _rxRefillPaused;

    /// <summary>
    /// Posts <paramref name="chain"/> into the RX ring exactly as given (needs free RX descriptors: see
    /// <see cref="SyntheticGuestOptions.RxReserve"/>), behind the buffers already stocked, and kicks if
    /// the device wants it. When the device returns it, its used length shows in <see cref="RawRxUsed"/>
    /// and nothing is parsed. Returns the head index.
    /// </summary>
    public ushort PostRawRx(params RawDescriptor[] chain)
    {
        CheckRawChain(chain);
        lock (_sync)
        {
            ThrowIfDisposed();
            var head = WriteRawChain(_rx, chain, "RX", " (set RxReserve)");
            _rawRxHeads.Add(head);
            _rx.MakeAvailable(head);
            if (_rx.KickNeeded())
                KickRxNow();
            return head;
        }
    }

    /// <summary>
    /// Stops reposting RX buffers as the device uses them (a guest that falls behind): once the device has used the
    /// ones posted, it has none until <see cref="ResumeRxRefill"/>.
    /// </summary>
    public void PauseRxRefill()
    {
        lock (_sync)
        {
            ThrowIfDisposed();
            _rxRefillPaused = true;
        }
    }

    /// <summary>Stocks the RX ring again (kicking if the device asks) and keeps it stocked.</summary>
    public void ResumeRxRefill()
    {
        lock (_sync)
        {
            ThrowIfDisposed();
            _rxRefillPaused = false;
            FillRx(kick: true);
        }
    }

    /// <summary>RX buffers posted and not yet returned by the device (raw chains included).</summary>
    public int RxBuffersPosted
    {
        get
        {
            lock (_sync)
                return _rx.ChainsInFlight;
        }
    }

    /// <summary>Raw RX chains the device has returned, with the length it used, in used-ring order.</summary>
    public IReadOnlyList<(ushort Head, uint UsedLength)> RawRxUsed
    {
        get
        {
            lock (_sync)
                return [.. _rawRxUsed];
        }
    }

    /// <summary>Size of the guest RAM (valid guest physical addresses are [0, RamSize)).</summary>
    public ulong RamSize => _ram.Size;

    /// <summary>TX chains the device has returned through the used ring so far.</summary>
    public long UsedTxCount
    {
        get
        {
            lock (_sync)
                return _usedTxChains;
        }
    }

    /// <summary>TX chains posted and not yet returned by the device.</summary>
    public int TxChainsInFlight
    {
        get
        {
            lock (_sync)
                return _tx.ChainsInFlight;
        }
    }

    /// <summary>Reserves <paramref name="size"/> bytes of guest RAM for a test's own buffers.</summary>
    public ulong AllocateScratch(int size, int alignment = 64)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        lock (_sync)
        {
            ThrowIfDisposed();
            return _ram.Allocate((ulong)size, (ulong)alignment);
        }
    }

    public void WriteMemory(ulong gpa, ReadOnlySpan<byte> data)
    {
        lock (_sync)
        {
            ThrowIfDisposed();
            data.CopyTo(_ram.Span(gpa, data.Length));
        }
    }

    public byte[] ReadMemory(ulong gpa, int length)
    {
        lock (_sync)
        {
            ThrowIfDisposed();
            return _ram.Span(gpa, length).ToArray();
        }
    }

    /// <summary>
    /// Writes <paramref name="chain"/> into free TX descriptors exactly as given (addresses, lengths,
    /// flags; <see cref="RawDescriptor.Next"/> translated to the descriptors used unless absolute),
    /// publishes entry 0 as the head and kicks if the device wants it. Returns the head index.
    /// </summary>
    public ushort SendRawTx(params RawDescriptor[] chain)
    {
        CheckRawChain(chain);
        lock (_sync)
        {
            ThrowIfDisposed();
            var head = WriteRawChain(_tx, chain, "TX", "");
            PublishTx(head);
            _packetsSent++;
            return head;
        }
    }

    private static void CheckRawChain(RawDescriptor[] chain)
    {
        ArgumentNullException.ThrowIfNull(chain);
        if (chain.Length == 0)
            throw new ArgumentException("a chain needs at least one descriptor", nameof(chain));
        for (var i = 0; i < chain.Length; i++)
        {
            if (!chain[i].NextIsAbsolute && chain[i].Next >= chain.Length)
                throw new ArgumentException($"descriptor {i} names chain entry {chain[i].Next}, the chain has {chain.Length}", nameof(chain));
        }
    }

    /// <summary>Writes <paramref name="chain"/> into free descriptors of <paramref name="queue"/> as given (under _sync); returns the head.</summary>
    private static ushort WriteRawChain(Virtio.DriverQueue queue, RawDescriptor[] chain, string ring, string hint)
    {
        var indices = new ushort[chain.Length];
        if (!queue.TryAllocate(indices))
            throw new InvalidOperationException($"the {ring} ring has {queue.FreeCount} free descriptors, the chain needs {chain.Length}{hint}");
        for (var i = 0; i < chain.Length; i++)
        {
            var d = chain[i];
            queue.WriteDescriptor(indices[i], d.Address, d.Length, d.Flags, d.NextIsAbsolute ? d.Next : indices[d.Next]);
        }
        return indices[0];
    }

    /// <summary>
    /// Sends <paramref name="header"/> and <paramref name="payload"/> in the configured TX layout
    /// with no checks at all: any CID, op, len (it need not match the payload), credit ignored.
    /// </summary>
    public void SendPacket(VsockHeader header, ReadOnlySpan<byte> payload = default)
    {
        Span<byte> bytes = stackalloc byte[VsockHeader.Size];
        header.WriteTo(bytes);
        SendPacket(bytes, payload);
    }

    /// <summary>As <see cref="SendPacket(VsockHeader, ReadOnlySpan{byte})"/> with the 44 header bytes given raw.</summary>
    public void SendPacket(ReadOnlySpan<byte> rawHeader, ReadOnlySpan<byte> payload)
    {
        if (rawHeader.Length != VsockHeader.Size)
            throw new ArgumentException($"a raw header is {VsockHeader.Size} bytes", nameof(rawHeader));
        lock (_sync)
        {
            ThrowIfDisposed();
            if (!TryPostTx(rawHeader, payload))
                throw new InvalidOperationException("the TX ring is full; wait for WaitForTxDrainedAsync first");
        }
    }

    /// <summary>A header from this guest (src = our CID) with the given fields, for <see cref="SendPacket(VsockHeader, ReadOnlySpan{byte})"/>.</summary>
    public VsockHeader MakeHeader(ulong dstCid, uint srcPort, uint dstPort, VsockOp op, uint length = 0, uint flags = 0, uint? bufAlloc = null, uint fwdCnt = 0) =>
        new(GuestCid, dstCid, srcPort, dstPort, length, VsockWire.TypeStream, (ushort)op, flags, bufAlloc ?? _options.BufAlloc, fwdCnt);

    /// <summary>Waits until the device has returned every TX chain posted so far.</summary>
    public async Task WaitForTxDrainedAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            Task wait;
            lock (_sync)
            {
                ThrowIfDisposed();
                if (_tx.ChainsInFlight == 0)
                    return;
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                    throw new TimeoutException($"{_tx.ChainsInFlight} TX chains still not returned by the device after {timeout.TotalMilliseconds:0} ms");
                wait = _txSpace.Wait().WaitAsync(left);
            }
            try
            {
                await wait.ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // re-checked above
            }
        }
    }

    /// <summary>
    /// Writes the TX ring's avail.idx <paramref name="ahead"/> entries past what the driver has published, in guest
    /// RAM only (the driver's own count is unchanged), without kicking: with <paramref name="ahead"/> above the ring
    /// size the ring is corrupt, as a broken or hostile driver leaves it.
    /// </summary>
    public void CorruptTxAvailIndex(ushort ahead)
    {
        lock (_sync)
        {
            ThrowIfDisposed();
            BinaryPrimitives.WriteUInt16LittleEndian(_ram.Span(_tx.AvailGpa + 2, 2), unchecked((ushort)(_tx.AvailIdx + ahead)));
        }
    }

    /// <summary>Signals the TX kick eventfd regardless of notification suppression (a spurious kick). Touches no guest RAM.</summary>
    public void KickTx()
    {
        lock (_sync)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _txKicks++;
            _txKick.Signal();
        }
    }
}
