using System.Buffers.Binary;
using Vsock.Device.Interop;
using Vsock.Testing.VhostUser;
using Vsock.Testing.Virtio;

namespace Vsock.Testing;

/// <summary>
/// A vhost-user front end that plays QEMU 7.2 plus a Linux guest's virtio-vsock driver against a
/// back end, so the daemon can be tested and measured without a VM. It owns the guest RAM (a memfd),
/// the RX and TX split rings, the kick/call eventfds and a driver thread that takes interrupts,
/// consumes used buffers and keeps the RX ring stocked. On top sits a socket layer with Linux
/// af_vsock STREAM semantics (<see cref="Listen"/>, <see cref="ConnectAsync"/>, <see cref="GuestStream"/>),
/// and raw entry points for hostile-guest and hostile-VMM tests.
///
/// Concurrency: one lock (<c>_sync</c>) guards the rings, the streams and the counters; the driver
/// thread and API callers take it briefly and never await while holding it.
/// </summary>
public sealed partial class SyntheticGuest : IAsyncDisposable
{
    private const ulong RxEvent = 0;
    private const ulong TxEvent = 1;
    private const ulong WakeEvent = 2;
    private const int RxQueueIndex = 0;
    private const int TxQueueIndex = 1;

    private readonly object _sync = new();
    private readonly SyntheticGuestOptions _options;
    private readonly GuestRam _ram;
    private readonly DriverQueue _rx;
    private readonly DriverQueue _tx;
    private readonly EventFd _rxKick;
    private readonly EventFd _txKick;
    private readonly EventFd _rxCall;
    private readonly EventFd _txCall;
    private readonly EventFd _wake;
    private readonly Epoll _epoll;
    private readonly BufferLayout _buffers;
    private VhostUserClient? _client;
    private Thread? _driver;
    private volatile bool _stopping;
    private bool _disposed;
    private bool _memoryPulled;

    private SyntheticGuest(SyntheticGuestOptions options)
    {
        _options = options;
        _ram = new GuestRam(options.MemorySize, options.UserAddress, options.MemoryBacking);
        var created = new List<IDisposable> { _ram };
        try
        {
            _rx = new DriverQueue(_ram, options.QueueSize);
            _tx = new DriverQueue(_ram, options.QueueSize);
            _buffers = new BufferLayout(_ram, options);
            _rxKick = Track(EventFd.Create(), created);
            _txKick = Track(EventFd.Create(), created);
            _rxCall = Track(EventFd.Create(), created);
            _txCall = Track(EventFd.Create(), created);
            _wake = Track(EventFd.Create(), created);
            _epoll = Track(Epoll.Create(), created);
            _epoll.Add(_rxCall.Fd, EpollEvents.In, RxEvent);
            _epoll.Add(_txCall.Fd, EpollEvents.In, TxEvent);
            _epoll.Add(_wake.Fd, EpollEvents.In, WakeEvent);
        }
        catch
        {
            foreach (var d in created)
                d.Dispose();
            throw;
        }
    }

    /// <summary>The guest CID the device reported in its config space (GET_CONFIG).</summary>
    public ulong GuestCid { get; private set; }

    /// <summary>What GET_FEATURES offered.</summary>
    public ulong OfferedFeatures { get; private set; }

    /// <summary>What SET_FEATURES acknowledged.</summary>
    public ulong AckedFeatures { get; private set; }

    /// <summary>The driver negotiated VIRTIO_VSOCK_F_SEQPACKET: SEQPACKET sockets work.</summary>
    public bool SeqpacketNegotiated => (AckedFeatures & VirtioFeatures.VsockSeqpacket) != 0;

    /// <summary>Protocol features set with SET_PROTOCOL_FEATURES (offer ∩ {MQ, REPLY_ACK, CONFIG}).</summary>
    public ulong ProtocolFeatures { get; private set; }

    /// <summary>GET_QUEUE_NUM's answer (0 when MQ was not negotiated).</summary>
    public ulong QueueCount { get; private set; }

    public SyntheticGuestOptions Options => _options;

    /// <summary>
    /// Builds the guest RAM and rings, connects to the back end at <paramref name="vhostUserSocketPath"/>
    /// and runs QEMU 7.2's start sequence: GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES,
    /// GET_QUEUE_NUM, SET_OWNER, GET_CONFIG, SET_FEATURES, SET_MEM_TABLE, per ring SET_VRING_NUM/BASE/ADDR/KICK/CALL,
    /// SET_VRING_ENABLE. Then the RX ring is stocked and kicked and the driver thread starts.
    /// </summary>
    /// <exception cref="VhostUserProtocolException">The back end broke the protocol or refused the set-up.</exception>
    public static SyntheticGuest Connect(string vhostUserSocketPath, SyntheticGuestOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(vhostUserSocketPath);
        options ??= SyntheticGuestOptions.Default;
        options.Validate();
        var guest = new SyntheticGuest(options);
        try
        {
            guest._client = VhostUserClient.Connect(vhostUserSocketPath, options.SocketWaitTimeout);
            guest.Handshake();
            guest.StartDriver();
            return guest;
        }
        catch
        {
            guest.Release();
            throw;
        }
    }

    private void Handshake()
    {
        var client = _client!;
        var timeout = _options.ReplyTimeout;
        Span<byte> u64 = stackalloc byte[8];

        OfferedFeatures = client.CallU64(VhostUserRequest.GetFeatures, timeout);
        if ((OfferedFeatures & VirtioFeatures.ProtocolFeatures) != 0)
        {
            var offered = client.CallU64(VhostUserRequest.GetProtocolFeatures, timeout);
            ProtocolFeatures = offered & (VhostUserProtocolFeatures.Wanted | _options.ExtraProtocolFeatures);
            SendChecked(VhostUserRequest.SetProtocolFeatures, U64(u64, ProtocolFeatures));
        }
        if ((ProtocolFeatures & VhostUserProtocolFeatures.Mq) != 0)
        {
            QueueCount = client.CallU64(VhostUserRequest.GetQueueNum, timeout);
            if (QueueCount < 2)
                throw new VhostUserProtocolException($"GET_QUEUE_NUM says {QueueCount} queues; vsock needs RX and TX");
        }
        SendChecked(VhostUserRequest.SetOwner, default);

        // QEMU's vhost-user-vsock refuses a back end without CONFIG ("Device expects VHOST_USER_PROTOCOL_F_CONFIG").
        if ((ProtocolFeatures & VhostUserProtocolFeatures.Config) == 0)
            throw new VhostUserProtocolException("the back end does not offer VHOST_USER_PROTOCOL_F_CONFIG");
        Span<byte> config = stackalloc byte[12 + 8];
        config.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(config, 0);     // offset
        BinaryPrimitives.WriteUInt32LittleEndian(config[4..], 8); // size
        var reply = client.Call(VhostUserRequest.GetConfig, config, timeout, config.Length);
        if (BinaryPrimitives.ReadUInt32LittleEndian(reply) != 0 || BinaryPrimitives.ReadUInt32LittleEndian(reply.AsSpan(4)) != 8)
            throw new VhostUserProtocolException("GET_CONFIG reply does not echo offset 0 size 8");
        GuestCid = BinaryPrimitives.ReadUInt64LittleEndian(reply.AsSpan(12));

        if ((OfferedFeatures & VirtioFeatures.Version1) == 0)
            throw new VhostUserProtocolException($"the back end does not offer VIRTIO_F_VERSION_1 (features 0x{OfferedFeatures:x})");
        var acked = VirtioFeatures.Version1 | (OfferedFeatures & VirtioFeatures.ProtocolFeatures);
        if (_options.EventIdx && (OfferedFeatures & VirtioFeatures.EventIdx) != 0)
            acked |= VirtioFeatures.EventIdx;
        if (_options.Seqpacket && (OfferedFeatures & VirtioFeatures.VsockSeqpacket) != 0)
            acked |= VirtioFeatures.VsockSeqpacket;
        if (_options.RxLayout == RxLayout.Indirect)
        {
            if ((OfferedFeatures & VirtioFeatures.IndirectDesc) == 0)
                throw new NotSupportedException("RxLayout.Indirect needs VIRTIO_RING_F_INDIRECT_DESC, which the back end does not offer");
            acked |= VirtioFeatures.IndirectDesc;
        }
        AckedFeatures = acked;
        SendChecked(VhostUserRequest.SetFeatures, U64(u64, acked));
        _rx.EventIdx = _tx.EventIdx = (acked & VirtioFeatures.EventIdx) != 0;

        // The driver stocks RX before the rings go live (Linux fills RX at probe, QEMU starts vhost on DRIVER_OK).
        lock (_sync)
        {
            FillRx(kick: false);
            _rx.EnableInterrupts();
            _tx.EnableInterrupts();
        }

        // Memory table: one region, nregions + padding + one 32-byte region = 40 bytes, as QEMU sends it.
        Span<byte> table = stackalloc byte[8 + 32];
        table.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(table, 1);
        BinaryPrimitives.WriteUInt64LittleEndian(table[8..], 0);              // guest_phys_addr
        BinaryPrimitives.WriteUInt64LittleEndian(table[16..], _ram.Size);     // memory_size
        BinaryPrimitives.WriteUInt64LittleEndian(table[24..], _ram.UserAddress); // userspace_addr
        BinaryPrimitives.WriteUInt64LittleEndian(table[32..], 0);             // mmap_offset
        int[] memFd = [(int)_ram.Fd.DangerousGetHandle()];
        if ((ProtocolFeatures & VhostUserProtocolFeatures.ReplyAck) != 0)
        {
            var ack = client.Call(VhostUserRequest.SetMemTable, table, timeout, 8, memFd, needReply: true);
            var status = BinaryPrimitives.ReadUInt64LittleEndian(ack);
            if (status != 0)
                throw new VhostUserProtocolException($"SET_MEM_TABLE was refused (REPLY_ACK status {status})");
        }
        else
        {
            SendChecked(VhostUserRequest.SetMemTable, table, memFd);
        }

        SetUpRing(RxQueueIndex, _rx, _rxKick, _rxCall);
        SetUpRing(TxQueueIndex, _tx, _txKick, _txCall);
        if ((acked & VirtioFeatures.ProtocolFeatures) != 0)
        {
            SendChecked(VhostUserRequest.SetVringEnable, VringState(stackalloc byte[8], RxQueueIndex, 1));
            SendChecked(VhostUserRequest.SetVringEnable, VringState(stackalloc byte[8], TxQueueIndex, 1));
        }

        // A trailing GET_FEATURES is a barrier (newer QEMU uses it so): once answered, the back end has
        // handled everything above, so a host connection made right after Connect finds the rings running.
        if (_options.SyncAfterStart && client.CallU64(VhostUserRequest.GetFeatures, timeout) != OfferedFeatures)
            throw new VhostUserProtocolException("GET_FEATURES answered differently the second time");

        // The first kick starts the ring (vhost-user "ring starts on first kick"); RX has buffers waiting.
        lock (_sync)
            KickRx();
    }

    private void SetUpRing(int index, DriverQueue queue, EventFd kick, EventFd call)
    {
        SendChecked(VhostUserRequest.SetVringNum, VringState(stackalloc byte[8], index, queue.Size));
        SendChecked(VhostUserRequest.SetVringBase, VringState(stackalloc byte[8], index, 0));
        Span<byte> address = stackalloc byte[40];
        address.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(address, (uint)index);
        BinaryPrimitives.WriteUInt32LittleEndian(address[4..], 0); // flags: no dirty log
        BinaryPrimitives.WriteUInt64LittleEndian(address[8..], _ram.UserAddress + queue.DescGpa);
        BinaryPrimitives.WriteUInt64LittleEndian(address[16..], _ram.UserAddress + queue.UsedGpa);
        BinaryPrimitives.WriteUInt64LittleEndian(address[24..], _ram.UserAddress + queue.AvailGpa);
        BinaryPrimitives.WriteUInt64LittleEndian(address[32..], 0); // log_guest_addr
        SendChecked(VhostUserRequest.SetVringAddr, address);
        Span<byte> u64 = stackalloc byte[8];
        SendChecked(VhostUserRequest.SetVringKick, U64(u64, (ulong)index), [kick.Fd]);
        SendChecked(VhostUserRequest.SetVringCall, U64(u64, (ulong)index), [call.Fd]);
    }

    private void SendChecked(uint request, ReadOnlySpan<byte> payload, ReadOnlySpan<int> fds = default)
    {
        try
        {
            _client!.Send(request, payload, fds);
        }
        catch (LinuxException e)
        {
            throw new VhostUserProtocolException($"sending request {request} failed: {e.Message}", e);
        }
    }

    private static ReadOnlySpan<byte> U64(Span<byte> buffer, ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(buffer, value);
        return buffer;
    }

    private static ReadOnlySpan<byte> VringState(Span<byte> buffer, int index, uint num)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)index);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer[4..], num);
        return buffer;
    }

    // ---- raw VMM side -------------------------------------------------------------------------

    /// <summary>Sends any vhost-user message on the control socket (hostile-VMM tests).</summary>
    public void SendRequest(uint request, ReadOnlySpan<byte> payload, ReadOnlySpan<int> fds, bool needReply) =>
        Client.Send(request, payload, fds, needReply);

    /// <summary>Sends arbitrary bytes on the control socket (a lying size field, half a header).</summary>
    public void SendRawVhostUserBytes(ReadOnlySpan<byte> bytes, ReadOnlySpan<int> fds = default) => Client.SendRaw(bytes, fds);

    /// <summary>Reads one message from the back end, unvalidated; null when it hung up.</summary>
    public VhostUserReply? ReceiveReply(TimeSpan? timeout = null) => Client.Receive(timeout ?? _options.ReplyTimeout);

    /// <summary>True when the back end closes the control socket within <paramref name="timeout"/>.</summary>
    public bool WaitForVhostUserHangup(TimeSpan timeout) => Client.WaitForHangup(timeout);

    /// <summary>The guest RAM file (for tests that build their own SET_MEM_TABLE).</summary>
    public int MemoryFd => (int)_ram.Fd.DangerousGetHandle();

    /// <summary>The guest RAM file's seals now (null for a file that cannot carry seals).</summary>
    public FileSeals? MemorySeals => MemFd.GetSeals(_ram.Fd);

    /// <summary>
    /// Plays a VMM that pulls guest RAM away: ftruncate of the RAM file to <paramref name="newSize"/> bytes.
    /// False when the file refuses (EPERM: sealed against shrinking), and the guest carries on. When it
    /// succeeds, this process's own view of the RAM past <paramref name="newSize"/> is gone as well: the
    /// driver thread is stopped before the truncation (it would fault on the rings) and from then on only
    /// the raw vhost-user calls, <see cref="KickTx"/> and disposal may be used.
    /// </summary>
    public bool TryShrinkMemory(long newSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(newSize);
        StopDriver();
        lock (_sync) // API callers touch the RAM under this lock: they finish first, and see _memoryPulled after
        {
            ThrowIfDisposed();
            try
            {
                MemFd.Truncate(_ram.Fd, newSize);
                _memoryPulled = true;
                return true;
            }
            catch (LinuxException e) when (e.Errno == Errno.EPERM)
            {
            }
        }
        StartDriver();
        return false;
    }

    private void StopDriver()
    {
        _stopping = true;
        _wake.Signal();
        _driver?.Join();
        _driver = null;
        _stopping = false;
    }

    /// <summary>
    /// Closes the vhost-user socket abruptly, like a SIGKILLed QEMU. Rings, RAM and the driver
    /// thread stay (nothing will arrive any more); dispose the guest to release them.
    /// </summary>
    public void Disconnect() => _client?.Close();

    private VhostUserClient Client => _client ?? throw new InvalidOperationException("not connected");

    private void StartDriver()
    {
        if (_disposed)
            return;
        _driver = new Thread(DriverLoop) { IsBackground = true, Name = $"synthetic-guest-cid-{GuestCid}" };
        _driver.Start();
    }

    public async ValueTask DisposeAsync()
    {
        lock (_sync)
        {
            if (_disposed)
                return;
            _disposed = true;
            WakeEveryone();
        }
        _stopping = true;
        _wake.Signal();
        if (_driver is { } driver)
            await Task.Run(() => driver.Join()).ConfigureAwait(false);
        Release();
    }

    private void Release()
    {
        _client?.Close();
        _epoll.Dispose();
        _rxKick.Dispose();
        _txKick.Dispose();
        _rxCall.Dispose();
        _txCall.Dispose();
        _wake.Dispose();
        _ram.Dispose();
    }

    private static T Track<T>(T item, List<IDisposable> created)
        where T : IDisposable
    {
        created.Add(item);
        return item;
    }
}
