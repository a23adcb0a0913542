using Microsoft.Win32.SafeHandles;
using Vsock.Device.VhostUser;

namespace Vsock.Device.Tests.VhostUser;

/// <summary>A session over a recording backend and a native-memory mapper, with request shortcuts.</summary>
internal sealed class SessionHarness : IDisposable
{
    /// <summary>Where the fake VMM "maps" guest RAM in its own address space.</summary>
    public const ulong UserBase = 0x7f00_0000_0000;
    public const ulong RamSize = 0x20_0000;

    private readonly byte[] _reply = new byte[VhostUserCodec.MaxMessageSize];

    public SessionHarness(RecordingBackend? backend = null)
    {
        Backend = backend ?? new RecordingBackend();
        Session = new VhostUserSession(Backend, Mapper, Log.Add);
    }

    public RecordingBackend Backend { get; }
    public NativeMemoryMapper Mapper { get; } = new();
    public TestFds Fds { get; } = new();
    public List<string> Log { get; } = [];
    public VhostUserSession Session { get; }

    /// <summary>Handles one request and returns the reply bytes (empty if none); the message is disposed as a caller would.</summary>
    public byte[] Send(VhostUserRequest request, byte[]? payload = null, bool needReply = false, params SafeFileHandle[] fds)
    {
        using var message = Frontend.Message(request, payload, needReply, fds);
        var n = Session.Handle(message, _reply);
        return _reply[..n];
    }

    public VhostUserProtocolException Refused(VhostUserError error, VhostUserRequest request, byte[]? payload = null, bool needReply = false, params SafeFileHandle[] fds)
    {
        var e = Assert.Throws<VhostUserProtocolException>(() => Send(request, payload, needReply, fds));
        Assert.Equal(error, e.Error);
        Assert.StartsWith(VhostUserCodec.Name(request), e.Message);
        return e;
    }

    public void NegotiateProtocol(ulong protocolFeatures) =>
        Assert.Empty(Send(VhostUserRequest.SetProtocolFeatures, Frontend.U64(protocolFeatures)));

    public void AckFeatures(ulong features = RecordingBackend.VsockFeatures) =>
        Assert.Empty(Send(VhostUserRequest.SetFeatures, Frontend.U64(features)));

    /// <summary>One region: guest [0, RamSize) at VMM address UserBase.</summary>
    public void SetMemory() =>
        Send(VhostUserRequest.SetMemTable, Frontend.MemTable(Frontend.Region(0, RamSize, UserBase)), fds: Fds.Open());

    /// <summary>Ring layout inside guest RAM: desc at 0x10000 + 0x4000*index, avail +0x1000, used +0x2000.</summary>
    public static (ulong Desc, ulong Avail, ulong Used) RingGpas(uint index)
    {
        var desc = 0x10000UL + 0x4000UL * index;
        return (desc, desc + 0x1000, desc + 0x2000);
    }

    public void ConfigureRing(uint index, uint size = 128, uint nextAvail = 0)
    {
        var (desc, avail, used) = RingGpas(index);
        Send(VhostUserRequest.SetVringNum, Frontend.State(index, size));
        Send(VhostUserRequest.SetVringBase, Frontend.State(index, nextAvail));
        Send(VhostUserRequest.SetVringAddr, Frontend.Addr(index, UserBase + desc, UserBase + used, UserBase + avail));
    }

    public SafeFileHandle Kick(uint index)
    {
        var fd = Fds.Open();
        Send(VhostUserRequest.SetVringKick, Frontend.U64(index), fds: fd);
        return fd;
    }

    public void Enable(uint index, bool enabled = true) =>
        Send(VhostUserRequest.SetVringEnable, Frontend.State(index, enabled ? 1u : 0u));

    /// <summary>Protocol and virtio features negotiated, memory set, ring <paramref name="index"/> running.</summary>
    public void StartRing(uint index = 0)
    {
        if (Session.AckedFeatures == 0)
        {
            NegotiateProtocol(Backend.ProtocolFeatures);
            AckFeatures();
        }
        if (Session.Memory.Regions.Count == 0)
            SetMemory();
        ConfigureRing(index);
        Kick(index);
        Enable(index);
        Assert.True(Backend.Running.ContainsKey((int)index));
    }

    public void Dispose() => Session.Dispose();
}
