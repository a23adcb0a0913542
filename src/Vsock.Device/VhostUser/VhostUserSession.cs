using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Vsock.Device.Memory;
using Vsock.Device.Virtio;
using static Vsock.Device.VhostUser.VhostUserProtocolFeatures;

namespace Vsock.Device.VhostUser;

/// <summary>
/// The backend half of one VMM connection: turns front-end requests into calls on an
/// <see cref="IVhostUserBackend"/> and keeps the protocol state (features, memory table, ring states).
/// Knows nothing about queues or sockets: the caller reads messages (<see cref="VhostUserReader"/>),
/// passes each to <see cref="Handle"/>, sends back what it returns, and disposes the message.
/// Not thread-safe: one thread (or actor) handles a connection's requests in order.
///
/// Errors: a <see cref="VhostUserProtocolException"/> means the session must end (disconnect that VMM
/// only). A refusal of a well-formed request is answered with ack 1 instead when REPLY_ACK is negotiated
/// and the request asked for a reply; the refused request then changed nothing.
/// </summary>
public sealed partial class VhostUserSession : IDisposable
{
    /// <summary>Protocol features this session implements; a backend may offer no others.</summary>
    public const ulong SupportedProtocolFeatures =
        (1UL << Mq) | (1UL << ReplyAck) | (1UL << Config) | (1UL << ResetDevice) | (1UL << ConfigureMemSlots) | (1UL << Status);

    /// <summary>The split-ring maximum (virtio spec).</summary>
    public const int MaxRingSize = 32768;

    /// <summary>Ring indices travel in 8 bits in SET_VRING_KICK/CALL/ERR.</summary>
    public const int MaxQueueCount = 256;

    private const int NoReply = -1;

    private readonly IVhostUserBackend _backend;
    private readonly IMemoryMapper _mapper;
    private readonly Action<string>? _log;
    private readonly VringState[] _rings;
    private readonly int _maxRingSize;
    private GuestMemory _memory = GuestMemory.Empty;
    private bool _disposed;

    public VhostUserSession(IVhostUserBackend backend, IMemoryMapper mapper, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(mapper);
        var unsupported = backend.ProtocolFeatures & ~SupportedProtocolFeatures;
        if (unsupported != 0)
            throw new ArgumentException($"backend offers protocol features 0x{unsupported:x} this session does not implement", nameof(backend));
        if (backend.QueueCount is < 1 or > MaxQueueCount)
            throw new ArgumentOutOfRangeException(nameof(backend), $"queue count {backend.QueueCount} is not in 1..{MaxQueueCount}");
        if (backend.MaxQueueSize is < 1 or > MaxRingSize)
            throw new ArgumentOutOfRangeException(nameof(backend), $"max queue size {backend.MaxQueueSize} is not in 1..{MaxRingSize}");
        _backend = backend;
        _mapper = mapper;
        _log = log;
        _maxRingSize = backend.MaxQueueSize;
        _rings = new VringState[backend.QueueCount];
        for (var i = 0; i < _rings.Length; i++)
            _rings[i] = new VringState();
    }

    /// <summary>The memory table in effect (<see cref="GuestMemory.Empty"/> before SET_MEM_TABLE).</summary>
    public GuestMemory Memory => _memory;

    public bool Owned { get; private set; }
    public ulong AckedFeatures { get; private set; }
    public ulong AckedProtocolFeatures { get; private set; }

    /// <summary>The virtio device status byte last set by SET_STATUS.</summary>
    public byte DeviceStatus { get; private set; }

    private bool ReplyAckNegotiated => (AckedProtocolFeatures & (1UL << ReplyAck)) != 0;

    /// <summary>
    /// Handles one request. Returns the length of the reply written to <paramref name="replyBuffer"/>
    /// (header and payload, to be sent as is), or 0 when the request has no reply.
    /// <paramref name="replyBuffer"/> must hold <see cref="VhostUserCodec.MaxMessageSize"/> bytes.
    /// </summary>
    public int Handle(VhostUserMessage message, Span<byte> replyBuffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(message);
        if (replyBuffer.Length < VhostUserCodec.MaxMessageSize)
            throw new ArgumentException($"the reply buffer must hold {VhostUserCodec.MaxMessageSize} bytes", nameof(replyBuffer));

        int length;
        try
        {
            length = Dispatch(message, replyBuffer);
        }
        catch (VhostUserProtocolException e) when (e.IsRejection && CanAck(message))
        {
            Log($"{e.Message}; acknowledged as failed");
            return VhostUserCodec.EncodeReply(message.Request, 1UL, replyBuffer);
        }
        if (length != NoReply)
            return length;
        return CanAck(message) ? VhostUserCodec.EncodeReply(message.Request, 0UL, replyBuffer) : 0;
    }

    /// <summary>
    /// REPLY_ACK: "the back-end MUST respond with a reply" to a NEED_REPLY request that has no reply of
    /// its own; requests with a reply just send that. Checked after handling, so the ack of the
    /// SET_PROTOCOL_FEATURES that negotiates REPLY_ACK is sent (as rust-vmm does).
    /// </summary>
    private bool CanAck(VhostUserMessage message) => message.NeedReply && ReplyAckNegotiated && !HasOwnReply(message.Request);

    private static bool HasOwnReply(VhostUserRequest request) => request is
        VhostUserRequest.GetFeatures or VhostUserRequest.GetProtocolFeatures or VhostUserRequest.GetVringBase or
        VhostUserRequest.GetQueueNum or VhostUserRequest.GetConfig or VhostUserRequest.GetMaxMemSlots or
        VhostUserRequest.GetStatus;

    private int Dispatch(VhostUserMessage m, Span<byte> reply)
    {
        switch (m.Request)
        {
            case VhostUserRequest.GetFeatures:
                ExpectEmpty(m);
                return VhostUserCodec.EncodeReply(m.Request, _backend.Features, reply);
            case VhostUserRequest.SetFeatures:
                SetFeatures(m);
                return NoReply;
            case VhostUserRequest.GetProtocolFeatures:
                ExpectEmpty(m);
                return VhostUserCodec.EncodeReply(m.Request, _backend.ProtocolFeatures, reply);
            case VhostUserRequest.SetProtocolFeatures:
                SetProtocolFeatures(m);
                return NoReply;
            case VhostUserRequest.SetOwner:
                ExpectEmpty(m);
                if (Owned)
                    Log("SET_OWNER again on an owned session: accepted");
                Owned = true;
                return NoReply;
            case VhostUserRequest.ResetOwner:
                ExpectEmpty(m);
                Log("RESET_OWNER: resetting the device");
                ResetDeviceState();
                Owned = false;
                return NoReply;
            case VhostUserRequest.ResetDevice:
                RequireProtocolFeature(m, ResetDevice);
                ExpectEmpty(m);
                Log("RESET_DEVICE: resetting the device");
                ResetDeviceState();
                return NoReply;
            case VhostUserRequest.GetQueueNum:
                RequireProtocolFeature(m, Mq);
                ExpectEmpty(m);
                return VhostUserCodec.EncodeReply(m.Request, (ulong)_rings.Length, reply);
            case VhostUserRequest.GetConfig:
                return GetConfig(m, reply);
            case VhostUserRequest.SetConfig:
                SetConfig(m);
                return NoReply;
            case VhostUserRequest.SetStatus:
                SetStatus(m);
                return NoReply;
            case VhostUserRequest.GetStatus:
                RequireProtocolFeature(m, Status);
                ExpectEmpty(m);
                return VhostUserCodec.EncodeReply(m.Request, (ulong)DeviceStatus, reply);
            case VhostUserRequest.SetMemTable:
                SetMemTable(m);
                return NoReply;
            case VhostUserRequest.GetMaxMemSlots:
                RequireProtocolFeature(m, ConfigureMemSlots);
                ExpectEmpty(m);
                return VhostUserCodec.EncodeReply(m.Request, MaxMemorySlots, reply);
            case VhostUserRequest.AddMemReg:
                AddMemoryRegion(m);
                return NoReply;
            case VhostUserRequest.RemMemReg:
                RemoveMemoryRegion(m);
                return NoReply;
            case VhostUserRequest.SetVringNum:
                SetVringNum(m);
                return NoReply;
            case VhostUserRequest.SetVringAddr:
                SetVringAddr(m);
                return NoReply;
            case VhostUserRequest.SetVringBase:
                SetVringBase(m);
                return NoReply;
            case VhostUserRequest.GetVringBase:
                return GetVringBase(m, reply);
            case VhostUserRequest.SetVringKick:
                SetVringKick(m);
                return NoReply;
            case VhostUserRequest.SetVringCall:
                SetVringCall(m);
                return NoReply;
            case VhostUserRequest.SetVringErr:
                SetVringErr(m);
                return NoReply;
            case VhostUserRequest.SetVringEnable:
                SetVringEnable(m);
                return NoReply;
            default:
                // Dirty logging, IOTLB, the back-end channel, inflight tracking, device state: none is
                // offered, so a front-end sending one is not speaking to the device it negotiated with.
                throw Fail(VhostUserError.UnsupportedRequest, m, "request not supported by this backend");
        }
    }

    private void SetFeatures(VhostUserMessage m)
    {
        var features = ReadPayload<ulong>(m);
        ExpectNoFds(m);
        var offered = _backend.Features;
        var extra = features & ~offered;
        if (extra != 0)
            throw Fail(VhostUserError.BadFeatures, m, $"features 0x{features:x} include 0x{extra:x}, which were not offered (0x{offered:x})");
        AckedFeatures = features;
        Log($"features acked: 0x{features:x}");
        _backend.FeaturesAcked(features);
        if ((features & VirtioFeatures.Bit(VirtioFeatures.ProtocolFeatures)) != 0)
            return;
        // Without VHOST_USER_F_PROTOCOL_FEATURES there is no SET_VRING_ENABLE: rings are enabled now.
        for (var i = 0; i < _rings.Length; i++)
            ApplyEnable(m, i, true);
    }

    private void SetProtocolFeatures(VhostUserMessage m)
    {
        var features = ReadPayload<ulong>(m);
        ExpectNoFds(m);
        var offered = _backend.ProtocolFeatures;
        var extra = features & ~offered;
        if (extra != 0)
            throw Fail(VhostUserError.BadFeatures, m, $"protocol features 0x{features:x} include 0x{extra:x}, which were not offered (0x{offered:x})");
        AckedProtocolFeatures = features;
        Log($"protocol features acked: 0x{features:x}");
    }

    private void SetStatus(VhostUserMessage m)
    {
        RequireProtocolFeature(m, Status);
        var status = ReadPayload<ulong>(m);
        ExpectNoFds(m);
        if (status > byte.MaxValue)
            throw Fail(VhostUserError.BadPayload, m, $"device status 0x{status:x} does not fit the 8-bit status field");
        // Recorded only. QEMU 7.2 sends SET_STATUS 0 *before* GET_VRING_BASE when it stops the device;
        // resetting here would lose the ring positions GET_VRING_BASE must report.
        DeviceStatus = (byte)status;
        Log($"device status 0x{status:x}");
    }

    private int GetConfig(VhostUserMessage m, Span<byte> reply)
    {
        RequireProtocolFeature(m, Config);
        var request = ReadConfigHeader(m);
        var space = _backend.ConfigSpace;
        if (request.Size == 0 || (ulong)request.Offset + request.Size > (ulong)space.Length)
        {
            // vhost-user.rst: "a zero-length payload" signals the error (as rust-vmm does); QEMU then fails
            // its request, which is what a bad range deserves.
            Log($"GET_CONFIG of {request.Size} bytes at offset {request.Offset} is outside the {space.Length}-byte config space: replying empty");
            var empty = request with { Size = 0 };
            return VhostUserCodec.EncodeReply(m.Request, in empty, reply);
        }
        // QEMU insists the reply be exactly as long as the request: the header echoed, then the bytes.
        var payload = new byte[Unsafe.SizeOf<VhostUserConfigHeader>() + (int)request.Size];
        MemoryMarshal.Write(payload, in request);
        space.Slice((int)request.Offset, (int)request.Size).CopyTo(payload.AsSpan(Unsafe.SizeOf<VhostUserConfigHeader>()));
        return VhostUserCodec.EncodeReply(m.Request, payload, reply);
    }

    private void SetConfig(VhostUserMessage m)
    {
        RequireProtocolFeature(m, Config);
        var request = ReadConfigHeader(m);
        // The vsock config space (guest_cid) is read-only to the driver; rust-vmm accepts and drops writes too.
        Log($"SET_CONFIG of {request.Size} bytes at offset {request.Offset} ignored: the config space is read-only");
    }

    private VhostUserConfigHeader ReadConfigHeader(VhostUserMessage m)
    {
        var payload = m.Payload.Span;
        var headerSize = Unsafe.SizeOf<VhostUserConfigHeader>();
        if (payload.Length < headerSize)
            throw Fail(VhostUserError.BadPayloadSize, m, $"payload of {payload.Length} bytes is shorter than the {headerSize}-byte config header");
        var header = VhostUserCodec.Read<VhostUserConfigHeader>(payload);
        if (header.Size != (uint)(payload.Length - headerSize))
            throw Fail(VhostUserError.BadPayloadSize, m, $"config header announces {header.Size} bytes but {payload.Length - headerSize} follow");
        if ((header.Flags & ~VhostUserConfigHeader.MigrationFlag) != 0)
            throw Fail(VhostUserError.BadPayload, m, $"unknown config flags 0x{header.Flags:x}");
        ExpectNoFds(m);
        return header;
    }

    /// <summary>RESET_OWNER / RESET_DEVICE: rings back to stopped+disabled, features forgotten; protocol features and the memory table stay.</summary>
    private void ResetDeviceState()
    {
        try
        {
            _backend.Reset();
        }
        finally
        {
            foreach (var ring in _rings)
                ring.Clear();
            AckedFeatures = 0;
            DeviceStatus = 0;
        }
    }

    /// <summary>Disconnect: the backend is reset, held fds are closed and the memory table is released.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        try
        {
            _backend.Reset();
        }
        finally
        {
            foreach (var ring in _rings)
                ring.Clear();
            ReleaseMemory();
        }
    }

    private void ReleaseMemory()
    {
        var old = _memory;
        if (old.Regions.Count == 0)
            return;
        _memory = GuestMemory.Empty;
        try
        {
            _backend.MemoryChanged(GuestMemory.Empty);
        }
        finally
        {
            old.Dispose();
        }
    }

    private void RequireProtocolFeature(VhostUserMessage m, int bit)
    {
        if ((AckedProtocolFeatures & (1UL << bit)) == 0)
            throw Fail(VhostUserError.UnsupportedRequest, m, $"needs protocol feature {ProtocolFeatureName(bit)}, which was not negotiated");
    }

    private static string ProtocolFeatureName(int bit) => bit switch
    {
        Mq => "MQ",
        ReplyAck => "REPLY_ACK",
        Config => "CONFIG",
        ResetDevice => "RESET_DEVICE",
        ConfigureMemSlots => "CONFIGURE_MEM_SLOTS",
        Status => "STATUS",
        _ => $"bit {bit}",
    };

    /// <summary>A request without payload and fds.</summary>
    private void ExpectEmpty(VhostUserMessage m)
    {
        ExpectPayload(m, 0);
        ExpectNoFds(m);
    }

    private static ReadOnlySpan<byte> ExpectPayload(VhostUserMessage m, int size)
    {
        if (m.Payload.Length != size)
            throw Fail(VhostUserError.BadPayloadSize, m, $"payload is {m.Payload.Length} bytes, expected {size}");
        return m.Payload.Span;
    }

    /// <summary>A fixed-layout payload; its size is checked before any field is read.</summary>
    private static T ReadPayload<T>(VhostUserMessage m) where T : unmanaged
    {
        var payload = ExpectPayload(m, Unsafe.SizeOf<T>());
        return VhostUserCodec.Read<T>(payload);
    }

    private static void ExpectFds(VhostUserMessage m, int count)
    {
        if (m.Fds.Count != count)
            throw Fail(VhostUserError.BadFdCount, m, $"{m.Fds.Count} fds attached, expected {count}");
    }

    /// <summary>Fds on a request that takes none are closed at once (not an error: nothing depends on them).</summary>
    private void ExpectNoFds(VhostUserMessage m)
    {
        if (m.Fds.Count == 0)
            return;
        Log($"{VhostUserCodec.Name(m.Request)}: closing {m.Fds.Count} fds the request does not take");
        for (var i = 0; i < m.Fds.Count; i++)
            m.TakeFd(i).Dispose();
    }

    private static VhostUserProtocolException Fail(VhostUserError error, VhostUserMessage m, string detail) =>
        new(error, $"{VhostUserCodec.Name(m.Request)}: {detail}");

    private void Log(string text) => _log?.Invoke(text);
}
