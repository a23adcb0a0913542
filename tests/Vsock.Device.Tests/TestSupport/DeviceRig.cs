using Microsoft.Win32.SafeHandles;
using Vsock.Device.Backend;
using Vsock.Device.Connections;
using Vsock.Device.Diagnostics;
using Vsock.Device.Interop;
using Vsock.Device.Packets;
using Vsock.Device.VhostUser;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.TestSupport;

/// <summary>
/// A <see cref="VsockBackend"/> with both data rings running over fake guest memory, each played by a
/// <see cref="MockDriver"/>, and call eventfds the test reads: what the RX/TX turn, stream and scheduler tests
/// drive. RX buffers are recycled (a consumed buffer's area is posted again), TX packets are written into fresh
/// guest memory, and the guard bytes around guest memory are checked on dispose.
/// </summary>
internal sealed class DeviceRig : IDisposable
{
    public const ulong GuestCid = 3;
    public const ushort QueueSize = 256;
    private const ulong RxRingBase = 0;
    private const ulong TxRingBase = 0x1_0000;
    private const ulong DataBase = 0x2_0000;

    private readonly Dictionary<ushort, GuestBuffer[]> _rxChains = new();
    private readonly Dictionary<uint, Queue<ulong>> _freeRx = new();
    private readonly List<ulong> _pendingRxAreas = [];
    private ulong _nextData = DataBase;
    private ushort _rxConsumed;
    private ushort _rxNextDescriptor;

    public DeviceRig(ulong memorySize = 32 << 20, bool eventIdx = false, bool indirect = false, ushort queueSize = QueueSize)
    {
        Ram = new NativeGuestMemory(memorySize);
        Rx = new MockDriver(Ram.Memory, queueSize, RxRingBase);
        Tx = new MockDriver(Ram.Memory, queueSize, TxRingBase);
        Log = new RecordingLog();
        DeviceLog = new DeviceLog(Log);
        Backend = new VsockBackend(GuestCid, queueSize, new NoEvents(), DeviceLog, Counters);
        Backend.MemoryChanged(Ram.Memory);
        Backend.RingStarted(VsockBackend.RxQueueIndex, Config(VsockBackend.RxQueueIndex, Rx, queueSize, eventIdx, indirect));
        Backend.RingStarted(VsockBackend.TxQueueIndex, Config(VsockBackend.TxQueueIndex, Tx, queueSize, eventIdx, indirect));
        RxCall = EventFd.Create();
        TxCall = EventFd.Create();
        // The backend owns the handles from now on (it disposes them); the test keeps reading through these.
        Backend.CallFdChanged(VsockBackend.RxQueueIndex, RxCall.Handle);
        Backend.CallFdChanged(VsockBackend.TxQueueIndex, TxCall.Handle);
    }

    public NativeGuestMemory Ram { get; }
    public MockDriver Rx { get; }
    public MockDriver Tx { get; }
    public VsockBackend Backend { get; }
    /// <summary>The backend's counters: what its RX and TX turns counted.</summary>
    public DeviceCounters Counters { get; } = new();
    public RecordingLog Log { get; }
    public DeviceLog DeviceLog { get; }
    public EventFd RxCall { get; }
    public EventFd TxCall { get; }

    private static VringConfig Config(int index, MockDriver d, ushort size, bool eventIdx, bool indirect) =>
        new(index, size, d.DescTable, d.AvailRing, d.UsedRing, 0, eventIdx, indirect, NotifyOnEmpty: false, KickFd: null);

    /// <summary>Guest memory for the test's own use (TX payloads, odd RX chains).</summary>
    public ulong Alloc(uint length, uint alignment = 8)
    {
        var address = (_nextData + alignment - 1) / alignment * alignment;
        _nextData = address + length + 8; // a gap, so a copy past a buffer's end lands in a checked hole
        if (_nextData > Ram.Memory.Regions[0].Size)
            throw new InvalidOperationException("the rig's guest memory is used up");
        return address;
    }

    // ------------------------------------------------------------------ RX: the guest's side

    /// <summary>Posts one single-descriptor RX buffer of <paramref name="length"/> bytes (header included).</summary>
    public ushort PostRx(uint length = 4096) => PostRxChain(new GuestBuffer(TakeRxArea(length), length, true));

    /// <summary>Posts <paramref name="count"/> single-descriptor RX buffers.</summary>
    public void PostRxBuffers(int count, uint length = 4096)
    {
        for (var i = 0; i < count; i++)
            PostRx(length);
    }

    /// <summary>Posts an RX buffer as a 44-byte header descriptor chained to a payload descriptor (Linux before 6.2).</summary>
    public ushort PostRxTwoDescriptors(uint payloadLength = 4096) =>
        PostRxChain(new GuestBuffer(Alloc(VsockConstants.HeaderSize), VsockConstants.HeaderSize, true),
            new GuestBuffer(Alloc(payloadLength), payloadLength, true));

    /// <summary>Posts any chain of buffers (unusable ones included) and remembers it to parse what the device writes.</summary>
    public ushort PostRxChain(params GuestBuffer[] buffers)
    {
        var head = _rxNextDescriptor;
        _rxNextDescriptor = (ushort)((_rxNextDescriptor + buffers.Length) % Rx.Size);
        var written = Rx.WriteChain(buffers);
        if (written != head)
            throw new InvalidOperationException("the mock driver's descriptor allocation moved");
        _rxChains[head] = buffers;
        Rx.Publish(head);
        return head;
    }

    /// <summary>Posts an indirect RX chain (header + payload descriptors in a table).</summary>
    public ushort PostRxIndirect(uint payloadLength = 4096)
    {
        var buffers = new[]
        {
            new GuestBuffer(Alloc(VsockConstants.HeaderSize), VsockConstants.HeaderSize, true),
            new GuestBuffer(Alloc(payloadLength), payloadLength, true),
        };
        var table = Alloc(2 * VirtqDescriptor.Size, 16);
        var head = _rxNextDescriptor;
        _rxNextDescriptor = (ushort)((_rxNextDescriptor + 1) % Rx.Size);
        var written = Rx.AddIndirectChain(table, buffers);
        if (written != head)
            throw new InvalidOperationException("the mock driver's descriptor allocation moved");
        _rxChains[head] = buffers;
        return head;
    }

    private ulong TakeRxArea(uint length)
    {
        if (_freeRx.TryGetValue(length, out var free) && free.TryDequeue(out var address))
            return address;
        return Alloc(length, 64);
    }

    /// <summary>
    /// RX buffers the device returned since the last call, in used-ring order, parsed as Linux does: header, then
    /// <c>len</c> payload bytes gathered over the chain. Single-descriptor buffers become free for the next post.
    /// </summary>
    public List<RxPacket> TakeRx()
    {
        var packets = new List<RxPacket>();
        var usedIdx = Rx.UsedIdx;
        while (_rxConsumed != usedIdx)
        {
            var (id, usedLength) = Rx.UsedElement(_rxConsumed);
            _rxConsumed++;
            var buffers = _rxChains[(ushort)id];
            _rxChains.Remove((ushort)id);
            if (buffers.Length == 1 && buffers[0].DeviceWritable)
            {
                if (!_freeRx.TryGetValue(buffers[0].Length, out var free))
                    _freeRx[buffers[0].Length] = free = new Queue<ulong>();
                free.Enqueue(buffers[0].Address);
            }
            if (usedLength < VsockConstants.HeaderSize)
            {
                packets.Add(new RxPacket((ushort)id, usedLength, default, []));
                continue;
            }
            var bytes = ChainBytes.Read(Ram.Memory, buffers);
            var header = VsockHeader.Read(bytes);
            var payload = bytes.AsSpan(VsockConstants.HeaderSize, (int)Math.Min(header.Len, (uint)(bytes.Length - VsockConstants.HeaderSize))).ToArray();
            packets.Add(new RxPacket((ushort)id, usedLength, header, payload));
        }
        return packets;
    }

    /// <summary>Calls the RX ring raised since the last call (the eventfd counter).</summary>
    public ulong TakeRxCalls() => RxCall.TryRead(out var n) ? n : 0;

    public ulong TakeTxCalls() => TxCall.TryRead(out var n) ? n : 0;

    // ------------------------------------------------------------------ TX: the guest's side

    /// <summary>Writes <paramref name="header"/> (len set to the payload's length unless given) and payload as header + payload descriptors.</summary>
    public ushort SendTx(VsockHeader header, ReadOnlySpan<byte> payload = default, bool keepLen = false)
    {
        if (!keepLen)
            header.Len = (uint)payload.Length;
        var h = Alloc(VsockConstants.HeaderSize);
        header.Write(Ram.Bytes(h, VsockConstants.HeaderSize));
        if (payload.IsEmpty)
            return Tx.AddChain(new GuestBuffer(h, VsockConstants.HeaderSize, false));
        var p = Alloc((uint)payload.Length);
        payload.CopyTo(Ram.Bytes(p, payload.Length));
        return Tx.AddChain(new GuestBuffer(h, VsockConstants.HeaderSize, false), new GuestBuffer(p, (uint)payload.Length, false));
    }

    /// <summary>As <see cref="SendTx"/> with the payload split over descriptors of <paramref name="fragment"/> bytes.</summary>
    public ushort SendTxFragmented(VsockHeader header, ReadOnlySpan<byte> payload, int fragment)
    {
        header.Len = (uint)payload.Length;
        var buffers = new List<GuestBuffer>();
        var h = Alloc(VsockConstants.HeaderSize);
        header.Write(Ram.Bytes(h, VsockConstants.HeaderSize));
        buffers.Add(new GuestBuffer(h, VsockConstants.HeaderSize, false));
        for (var offset = 0; offset < payload.Length; offset += fragment)
        {
            var n = Math.Min(fragment, payload.Length - offset);
            var p = Alloc((uint)n);
            payload.Slice(offset, n).CopyTo(Ram.Bytes(p, n));
            buffers.Add(new GuestBuffer(p, (uint)n, false));
        }
        return Tx.AddChain([.. buffers]);
    }

    /// <summary>A header from the guest (src = our CID) on the stream <paramref name="key"/>.</summary>
    public static VsockHeader FromGuest(ConnectionKey key, ushort op, uint flags = 0, uint bufAlloc = 256 * 1024, uint fwdCnt = 0,
        ushort type = VsockType.Stream) => new()
        {
            SrcCid = GuestCid,
            DstCid = key.PeerCid,
            SrcPort = key.GuestPort,
            DstPort = key.PeerPort,
            Type = type,
            Op = op,
            Flags = flags,
            BufAlloc = bufAlloc,
            FwdCnt = fwdCnt,
        };

    public delegate void PacketHandler(ref VsockPacket packet, ref TxTurn turn);

    /// <summary>One TX turn: every available packet to <paramref name="handler"/>, then Complete. Returns the packets handled.</summary>
    public int RunTx(PacketHandler handler, int budget = 128)
    {
        if (!Backend.TryBeginTx(budget, out var turn))
            throw new InvalidOperationException("the TX ring is not running");
        var handled = 0;
        try
        {
            while (turn.TryNext(out var packet))
            {
                handler(ref packet, ref turn);
                handled++;
            }
        }
        finally
        {
            turn.Complete();
        }
        return handled;
    }

    /// <summary>One TX turn that hands every packet to <paramref name="stream"/>.</summary>
    public int RunTx(VsockStream stream) => RunTx((ref VsockPacket p, ref TxTurn t) => stream.OnGuestPacket(ref p, ref t));

    /// <summary>One RX turn for <paramref name="stream"/>: filled while it says More, then completed.</summary>
    public RxFill RunRx(VsockStream stream, uint quantum = RxScheduler.Quantum)
    {
        if (!Backend.TryBeginRx(out var turn))
            throw new InvalidOperationException("the RX ring is not running");
        RxFill result;
        try
        {
            do
                result = stream.FillRx(ref turn, quantum);
            while (result == RxFill.More);
        }
        finally
        {
            turn.Complete();
        }
        return result;
    }

    public void Dispose()
    {
        Backend.Dispose();
        var guards = Ram.GuardsIntact;
        Ram.Dispose();
        Assert.True(guards, "something wrote outside guest memory");
    }

    private sealed class NoEvents : IVsockDeviceEvents
    {
        public void RingReady(int index, SafeFileHandle? kickFd) { }
        public void RingStopped(int index) { }
        public void DeviceReset() { }
    }
}

/// <summary>One RX buffer as the guest driver sees it once the device returned it.</summary>
internal sealed record RxPacket(ushort Head, uint UsedLength, VsockHeader Header, byte[] Payload)
{
    public ushort Op => Header.Op;
}

/// <summary>An <see cref="IDeviceLog"/> that keeps every line.</summary>
internal sealed class RecordingLog : IDeviceLog
{
    public List<string> Lines { get; } = [];
    public List<string> Warnings { get; } = [];
    public void Debug(string message) => Lines.Add("DEBUG " + message);
    public void Info(string message) => Lines.Add("INFO " + message);
    public void Warning(string message)
    {
        Lines.Add("WARNING " + message);
        Warnings.Add(message);
    }
}
