using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.VhostUser;
using P = Vsock.Device.VhostUser.VhostUserProtocolFeatures;
using R = Vsock.Device.VhostUser.VhostUserRequest;

namespace Vsock.Device.Tests.VhostUser;

/// <summary>
/// What QEMU 7.2's vhost-user-vsock-pci sends (e2e-rig-facts.md, vhost_user_backend_init / vhost_dev_start /
/// vhost_dev_stop), as bytes through the codec, the reader and the session: realize, driver start, stop,
/// restart, disconnect.
/// </summary>
public sealed class VhostUserQemuSequenceTests : IDisposable
{
    // QEMU 7.2's VHOST_USER_PROTOCOL_FEATURE_MASK covers bits 0..16.
    private const ulong QemuProtocolMask = (1UL << 17) - 1;
    // A 2 MiB q35 guest: low RAM below the VGA hole, then the rest; both from one memfd.
    private const ulong U = 0x7f12_3400_0000;
    private const ulong RingArea = 0x100000;

    private readonly FakeTransport _transport = new() { ChunkRandom = new Random(7) };
    private readonly TestFds _fds = new();
    private readonly RecordingBackend _backend = new();
    private readonly NativeMemoryMapper _mapper = new();
    private readonly List<string> _log = [];
    private readonly byte[] _replyBuffer = new byte[VhostUserCodec.MaxMessageSize];
    private readonly VhostUserReader _reader;
    private VhostUserSession _session = null!;

    public VhostUserQemuSequenceTests() => _reader = new VhostUserReader(_transport);

    public void Dispose()
    {
        _session.Dispose();
        _transport.Dispose();
    }

    /// <summary>The front-end sends one request; the backend loop reads, handles and answers it.</summary>
    private byte[]? Exchange(R request, byte[]? payload = null, bool needReply = false, params SafeFileHandle[] fds)
    {
        _transport.Enqueue(Frontend.Encode(request, payload, needReply), fds);
        _transport.Sent.Clear();
        using (var message = _reader.ReadMessage())
        {
            Assert.NotNull(message);
            var n = _session.Handle(message, _replyBuffer);
            if (n > 0)
                _transport.Send(_replyBuffer.AsSpan(0, n));
        }
        if (_transport.Sent.Count == 0)
            return null;
        var reply = Assert.Single(_transport.Sent);
        var (header, _) = Frontend.ParseReply(reply);
        Assert.Equal(request, header.Request);
        Assert.Equal(VhostUserCodec.ReplyFlag | VhostUserCodec.Version, header.Flags); // vhost_user_read_header
        return reply;
    }

    private static (ulong Desc, ulong Avail, ulong Used) Ring(uint index)
    {
        var desc = RingArea + 0x10000 * index;
        return (desc, desc + 128 * 16, desc + 0x1000);
    }

    private static readonly VhostUserMemoryRegion LowRam = Frontend.Region(0, 0xa0000, U, 0);
    private static readonly VhostUserMemoryRegion HighRam = Frontend.Region(0xc0000, 0x140000, U + 0xc0000, 0xc0000);

    public static TheoryData<ulong> Offers => new()
    {
        P.Bit(P.Mq) | P.Bit(P.Config), // rust-vmm vhost-device-vsock's 0x201
        P.Bit(P.Mq) | P.Bit(P.Config) | P.Bit(P.ReplyAck),
        VhostUserSession.SupportedProtocolFeatures, // adds memory slots, status, reset
    };

    [Theory]
    [MemberData(nameof(Offers))]
    public void Qemu_72_start_stop_restart(ulong offer)
    {
        _backend.ProtocolFeatures = offer;
        _session = new VhostUserSession(_backend, _mapper, _log.Add);
        var acked = offer & QemuProtocolMask;
        var replyAck = (acked & P.Bit(P.ReplyAck)) != 0;
        var memSlots = (acked & P.Bit(P.ConfigureMemSlots)) != 0;
        var status = (acked & P.Bit(P.Status)) != 0;

        // realize
        var features = Frontend.ReplyU64(Exchange(R.GetFeatures));
        Assert.NotEqual(0UL, features & (1UL << 30));
        Assert.Equal(offer, Frontend.ReplyU64(Exchange(R.GetProtocolFeatures)));
        Assert.Null(Exchange(R.SetProtocolFeatures, Frontend.U64(acked)));
        Assert.Equal(3UL, Frontend.ReplyU64(Exchange(R.GetQueueNum)));
        if (memSlots)
            Assert.Equal(509UL, Frontend.ReplyU64(Exchange(R.GetMaxMemSlots)));
        Assert.Null(Exchange(R.SetOwner));
        Assert.Equal(features, Frontend.ReplyU64(Exchange(R.GetFeatures)));
        for (uint i = 0; i < 2; i++)
        {
            Assert.Null(Exchange(R.SetVringCall, Frontend.U64(i), fds: _fds.Open()));
            Assert.Null(Exchange(R.SetVringErr, Frontend.U64(i), fds: _fds.Open()));
        }
        var config = Exchange(R.GetConfig, Frontend.Config(0, 8))!;
        Assert.Equal(12 + 12 + 8, config.Length);
        Assert.Equal(3UL, BitConverter.ToUInt64(config, 24));

        StartDevice(replyAck, memSlots, status, nextAvail: 0);

        // The guest's driver and the backend share memory: what one writes the other reads.
        var (desc0, _, _) = Ring(0);
        _session.Memory.WriteUInt32(desc0, 0x12345678);
        Assert.Equal(0x12345678u, _backend.Memory!.ReadUInt32(desc0));

        // guest reboot: stop ...
        if (status)
            Assert.Null(Exchange(R.SetStatus, Frontend.U64(0)));
        for (uint i = 0; i < 2; i++)
            Assert.Null(Exchange(R.SetVringEnable, Frontend.State(i, 0)));
        Assert.Equal(["RingEnabledChanged 0 False", "RingEnabledChanged 1 False"], _backend.Calls[^2..]);
        var bases = new uint[2];
        for (uint i = 0; i < 2; i++)
        {
            var state = MemoryMarshal.Read<VhostUserVringState>(Frontend.ParseReply(Exchange(R.GetVringBase, Frontend.State(i, 0))).Payload);
            Assert.Equal(i, state.Index);
            bases[i] = state.Num;
        }
        Assert.Equal([7u, 7u], bases);
        Assert.Empty(_backend.Running);
        for (uint i = 0; i < 2; i++)
            Assert.Null(Exchange(R.SetVringCall, Frontend.U64(i), fds: _fds.Open()));

        // ... and start again where the rings stopped, with the memory table sent anew.
        StartDevice(replyAck, memSlots, status, nextAvail: 7);
        Assert.Equal(4, _backend.Starts.Count);
        Assert.Equal(memSlots ? 2 : 4, _mapper.MapCount);

        // disconnect
        _transport.Complete();
        Assert.Null(_reader.ReadMessage());
        _session.Dispose();
        Assert.Equal(0, _mapper.Live);
        Assert.Equal(0, _fds.StillOpen);
        Assert.Contains(_log, l => l.StartsWith("ring 1 started: size 128"));
    }

    private void StartDevice(bool replyAck, bool memSlots, bool status, ushort nextAvail)
    {
        var guestFeatures = RecordingBackend.VsockFeatures; // VERSION_1 | NOTIFY_ON_EMPTY | EVENT_IDX | bit 30
        Assert.Null(Exchange(R.SetFeatures, Frontend.U64(guestFeatures)));
        if (memSlots)
        {
            // With CONFIGURE_MEM_SLOTS QEMU diffs its table against what it sent before: on a restart the
            // regions are unchanged and nothing is sent.
            if (_session.Memory.Regions.Count == 0)
            {
                foreach (var region in new[] { LowRam, HighRam })
                    AssertAck(Exchange(R.AddMemReg, Frontend.SingleRegion(region), needReply: replyAck, fds: _fds.Open()), replyAck);
            }
        }
        else
        {
            AssertAck(Exchange(R.SetMemTable, Frontend.MemTable(LowRam, HighRam), needReply: replyAck, fds: _fds.Open(2)), replyAck);
        }
        Assert.Equal(2, _session.Memory.Regions.Count);
        Assert.Equal(2, _mapper.Live); // a re-sent table released the previous mappings

        var kicks = new SafeFileHandle[2];
        for (uint i = 0; i < 2; i++)
        {
            var (desc, avail, used) = Ring(i);
            Assert.Null(Exchange(R.SetVringNum, Frontend.State(i, 128)));
            Assert.Null(Exchange(R.SetVringBase, Frontend.State(i, nextAvail)));
            Assert.Null(Exchange(R.SetVringAddr, Frontend.Addr(i, U + desc, U + used, U + avail)));
            kicks[i] = _fds.Open();
            Assert.Null(Exchange(R.SetVringKick, Frontend.U64(i), fds: kicks[i]));
        }
        Assert.Empty(_backend.Running); // rings start disabled with PROTOCOL_FEATURES
        for (uint i = 0; i < 2; i++)
            Assert.Null(Exchange(R.SetVringEnable, Frontend.State(i, 1)));
        if (status)
            Assert.Null(Exchange(R.SetStatus, Frontend.U64(0x0f)));
        for (uint i = 0; i < 2; i++)
            Assert.Null(Exchange(R.SetVringCall, Frontend.U64(i), fds: _fds.Open()));

        for (var i = 0; i < 2; i++)
        {
            var (desc, avail, used) = Ring((uint)i);
            Assert.Equal(
                new VringConfig(i, 128, desc, avail, used, nextAvail, EventIdx: true, IndirectDescriptors: false, NotifyOnEmpty: true, kicks[i]),
                _backend.Running[i]);
        }
        Assert.False(_backend.Running.ContainsKey(2)); // QEMU keeps the event queue
        Assert.Equal(2, _backend.CallFds.Count);
    }

    private static void AssertAck(byte[]? reply, bool expected)
    {
        if (expected)
            Assert.Equal(0UL, Frontend.ReplyU64(reply));
        else
            Assert.Null(reply);
    }
}
