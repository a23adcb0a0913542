using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Interop;
using Vsock.Device.Memory;
using Vsock.Testing.Packets;
using Vsock.Testing.VhostUser;

namespace Vsock.Testing.Tests;

/// <summary>
/// A deliberately tiny vhost-user vsock back end for testing the synthetic guest without the
/// daemon: it records every request, answers the handshake, and then plays a device that hands
/// each TX packet to <see cref="OnTx"/> and delivers whatever that returns into RX buffers. It
/// reads chains of any layout (header and payload gathered over all readable descriptors; RX
/// written over all writable ones, indirect tables followed) and always signals the call fds.
/// </summary>
internal sealed unsafe class FakeBackend : IDisposable
{
    private readonly string _directory;
    private readonly UnixSocket _listener;
    private readonly Thread _thread;
    private readonly List<SafeFileHandle> _ownedFds = [];
    private readonly object _sync = new();
    private readonly Queue<(VsockHeader Header, byte[] Payload)> _pendingRx = new();
    private UnixSocket? _connection;
    private MemoryRegion? _memory;
    private readonly Ring[] _rings = [new(), new()];
    private EventFd? _stop;
    private Thread? _device;
    private volatile bool _stopping;
    private int _enabled;

    public FakeBackend()
    {
        _directory = Directory.CreateTempSubdirectory("fake-vhost-").FullName;
        SocketPath = Path.Combine(_directory, "vhost.sock");
        _listener = UnixSocket.Listen(SocketPath);
        _thread = new Thread(Serve) { IsBackground = true, Name = "fake-vhost-backend" };
        _thread.Start();
    }

    public string SocketPath { get; }
    public ulong Features { get; init; } = VirtioFeatures.Version1 | VirtioFeatures.EventIdx | VirtioFeatures.ProtocolFeatures | VirtioFeatures.IndirectDesc;
    public ulong ProtocolFeatures { get; init; } = VhostUserProtocolFeatures.Mq | VhostUserProtocolFeatures.Config | VhostUserProtocolFeatures.ReplyAck | (1ul << 5);
    public ulong Cid { get; init; } = 7;
    public uint ReplyFlags { get; init; } = VhostUserFlags.Reply | VhostUserFlags.Version;

    /// <summary>Answers to a TX packet (the guest's header and payload); default: nothing.</summary>
    public Func<VsockHeader, byte[], IEnumerable<(VsockHeader, byte[])>> OnTx { get; set; } = (_, _) => [];

    public List<(uint Request, uint Flags, byte[] Payload, int FdCount)> Messages { get; } = [];
    public List<(VsockHeader Header, byte[] Payload, int Descriptors)> TxPackets { get; } = [];
    public List<(int Descriptors, uint TotalLength, bool Indirect)> RxChains { get; } = [];
    public Exception? Fault { get; private set; }
    public ulong AckedFeatures { get; private set; }
    public ulong AckedProtocolFeatures { get; private set; }
    public ManualResetEventSlim Enabled { get; } = new();

    public Ring RxRing => _rings[0];
    public Ring TxRing => _rings[1];

    /// <summary>Queues a packet for the guest (delivered when RX buffers are available).</summary>
    public void Inject(VsockHeader header, byte[] payload)
    {
        lock (_sync)
        {
            _pendingRx.Enqueue((header, payload));
            DeliverRx();
        }
    }

    public List<(uint Request, uint Flags, byte[] Payload, int FdCount)> Snapshot()
    {
        lock (_sync)
            return [.. Messages];
    }

    public List<(VsockHeader Header, byte[] Payload, int Descriptors)> TxSnapshot()
    {
        lock (_sync)
            return [.. TxPackets];
    }

    private void Serve()
    {
        try
        {
            while (Poll.WaitReadable(_listener.Handle, 50) == 0)
            {
                if (_stopping)
                    return;
            }
            _connection = _listener.Accept();
            var fds = new List<SafeFileHandle>();
            Span<byte> header = stackalloc byte[12];
            while (!_stopping)
            {
                fds.Clear();
                if (!ReadExactly(header, fds))
                    return;
                var request = BinaryPrimitives.ReadUInt32LittleEndian(header);
                var flags = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
                var size = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
                var payload = new byte[size];
                if (size > 0 && !ReadExactly(payload, fds))
                    return;
                lock (_sync)
                    Messages.Add((request, flags, payload, fds.Count));
                _ownedFds.AddRange(fds);
                Handle(request, flags, payload, fds);
            }
        }
        catch (Exception e) when (!_stopping)
        {
            Fault = e;
        }
        catch (Exception)
        {
            // stopping: the socket was closed under us
        }
    }

    private void Handle(uint request, uint flags, byte[] payload, List<SafeFileHandle> fds)
    {
        switch (request)
        {
            case VhostUserRequest.GetFeatures:
                ReplyU64(request, Features);
                break;
            case VhostUserRequest.GetProtocolFeatures:
                ReplyU64(request, ProtocolFeatures);
                break;
            case VhostUserRequest.SetProtocolFeatures:
                AckedProtocolFeatures = BinaryPrimitives.ReadUInt64LittleEndian(payload);
                break;
            case VhostUserRequest.GetQueueNum:
                ReplyU64(request, 3);
                break;
            case VhostUserRequest.SetFeatures:
                AckedFeatures = BinaryPrimitives.ReadUInt64LittleEndian(payload);
                break;
            case VhostUserRequest.GetConfig:
                var config = (byte[])payload.Clone();
                BinaryPrimitives.WriteUInt64LittleEndian(config.AsSpan(12), Cid);
                Reply(request, config);
                break;
            case VhostUserRequest.SetMemTable:
                var size = BinaryPrimitives.ReadUInt64LittleEndian(payload.AsSpan(16));
                var user = BinaryPrimitives.ReadUInt64LittleEndian(payload.AsSpan(24));
                _memory = MmapMemoryMapper.Instance.Map(fds[0], 0, 0, size, user);
                break;
            case VhostUserRequest.SetVringNum:
                _rings[BinaryPrimitives.ReadUInt32LittleEndian(payload)].Size = (ushort)BinaryPrimitives.ReadUInt32LittleEndian(payload.AsSpan(4));
                break;
            case VhostUserRequest.SetVringAddr:
                var ring = _rings[BinaryPrimitives.ReadUInt32LittleEndian(payload)];
                ring.Desc = BinaryPrimitives.ReadUInt64LittleEndian(payload.AsSpan(8)) - _memory!.UserAddress;
                ring.Used = BinaryPrimitives.ReadUInt64LittleEndian(payload.AsSpan(16)) - _memory.UserAddress;
                ring.Avail = BinaryPrimitives.ReadUInt64LittleEndian(payload.AsSpan(24)) - _memory.UserAddress;
                break;
            case VhostUserRequest.SetVringKick:
                _rings[(int)(BinaryPrimitives.ReadUInt64LittleEndian(payload) & 0xff)].Kick = EventFd.FromHandle(Take(fds[0]));
                break;
            case VhostUserRequest.SetVringCall:
                _rings[(int)(BinaryPrimitives.ReadUInt64LittleEndian(payload) & 0xff)].Call = EventFd.FromHandle(Take(fds[0]));
                break;
            case VhostUserRequest.SetVringEnable:
                if (++_enabled == 2)
                {
                    StartDevice();
                    Enabled.Set();
                }
                break;
        }
        if ((flags & VhostUserFlags.NeedReply) != 0)
            ReplyU64(request, 0);
    }

    private SafeFileHandle Take(SafeFileHandle fd)
    {
        _ownedFds.Remove(fd);
        return fd;
    }

    private void StartDevice()
    {
        _stop = EventFd.Create();
        _device = new Thread(DeviceLoop) { IsBackground = true, Name = "fake-vsock-device" };
        _device.Start();
    }

    private void DeviceLoop()
    {
        try
        {
            using var epoll = Epoll.Create();
            epoll.Add(RxRing.Kick!.Fd, EpollEvents.In, 0);
            epoll.Add(TxRing.Kick!.Fd, EpollEvents.In, 1);
            epoll.Add(_stop!.Fd, EpollEvents.In, 2);
            Span<EpollEvent> events = stackalloc EpollEvent[3];
            while (!_stopping)
            {
                var n = epoll.Wait(events, -1);
                RxRing.Kick.TryRead(out _);
                TxRing.Kick.TryRead(out _);
                if (_stopping)
                    return;
                lock (_sync)
                {
                    ProcessTx();
                    DeliverRx();
                }
            }
        }
        catch (Exception e) when (!_stopping)
        {
            Fault = e;
        }
        catch (Exception)
        {
            // torn down
        }
    }

    private void ProcessTx()
    {
        var ring = TxRing;
        while (ring.NextAvail != AvailIdx(ring))
        {
            var head = AvailEntry(ring, ring.NextAvail++);
            var bytes = new List<byte>();
            var count = 0;
            foreach (var (addr, len, flags) in Chain(ring, head))
            {
                count++;
                if ((flags & 2) == 0)
                    bytes.AddRange(new ReadOnlySpan<byte>(Host(addr, len), (int)len).ToArray());
            }
            var all = bytes.ToArray();
            var header = VsockHeader.ReadFrom(all);
            var payload = all.AsSpan(VsockHeader.Size, (int)Math.Min(header.Len, (uint)(all.Length - VsockHeader.Size))).ToArray();
            TxPackets.Add((header, payload, count));
            PutUsed(ring, head, 0);
            foreach (var answer in OnTx(header, payload))
                _pendingRx.Enqueue(answer);
        }
        PublishAvailEvent(ring);
        ring.Call!.Signal();
    }

    private void DeliverRx()
    {
        var ring = RxRing;
        if (ring.Call is null)
            return;
        var delivered = false;
        while (_pendingRx.Count > 0 && ring.NextAvail != AvailIdx(ring))
        {
            var (header, payload) = _pendingRx.Dequeue();
            var head = AvailEntry(ring, ring.NextAvail++);
            var data = new byte[VsockHeader.Size + payload.Length];
            header.WriteTo(data);
            payload.CopyTo(data, VsockHeader.Size);
            var written = 0;
            var count = 0;
            uint total = 0;
            var indirect = (Descriptor(ring.Desc, head).Flags & 4) != 0;
            foreach (var (addr, len, flags) in Chain(ring, head))
            {
                count++;
                total += len;
                var n = Math.Min((int)len, data.Length - written);
                data.AsSpan(written, n).CopyTo(new Span<byte>(Host(addr, len), (int)len));
                written += n;
            }
            if (written < data.Length)
                throw new InvalidOperationException($"RX buffer of {total} bytes too small for {data.Length}");
            RxChains.Add((count, total, indirect));
            PutUsed(ring, head, (uint)data.Length);
            delivered = true;
        }
        PublishAvailEvent(ring);
        if (delivered)
            ring.Call.Signal();
    }

    private IEnumerable<(ulong Addr, uint Len, ushort Flags)> Chain(Ring ring, ushort head)
    {
        var table = ring.Desc;
        var index = head;
        var first = Descriptor(table, index);
        if ((first.Flags & 4) != 0)
        {
            table = first.Addr;
            index = 0;
        }
        for (var guard = 0; guard < 1024; guard++)
        {
            var d = Descriptor(table, index);
            yield return (d.Addr, d.Len, d.Flags);
            if ((d.Flags & 1) == 0)
                yield break;
            index = d.Next;
        }
        throw new InvalidOperationException("descriptor loop");
    }

    private (ulong Addr, uint Len, ushort Flags, ushort Next) Descriptor(ulong table, ushort index)
    {
        var d = new ReadOnlySpan<byte>(Host(table + index * 16ul, 16), 16);
        return (BinaryPrimitives.ReadUInt64LittleEndian(d), BinaryPrimitives.ReadUInt32LittleEndian(d[8..]),
            BinaryPrimitives.ReadUInt16LittleEndian(d[12..]), BinaryPrimitives.ReadUInt16LittleEndian(d[14..]));
    }

    private ushort AvailIdx(Ring ring) => Volatile.Read(ref *(ushort*)Host(ring.Avail + 2, 2));

    private ushort AvailEntry(Ring ring, ushort i) => *(ushort*)Host(ring.Avail + 4 + 2ul * (ushort)(i % ring.Size), 2);

    private void PutUsed(Ring ring, ushort head, uint length)
    {
        var element = Host(ring.Used + 4 + 8ul * (ushort)(ring.NextUsed % ring.Size), 8);
        *(uint*)element = head;
        *(uint*)(element + 4) = length;
        ring.NextUsed++;
        Volatile.Write(ref *(ushort*)Host(ring.Used + 2, 2), ring.NextUsed);
    }

    /// <summary>avail_event = next avail we will read: the guest kicks for every new buffer.</summary>
    private void PublishAvailEvent(Ring ring)
    {
        Volatile.Write(ref *(ushort*)Host(ring.Used + 4 + 8ul * ring.Size, 2), ring.NextAvail);
        Interlocked.MemoryBarrier();
    }

    private byte* Host(ulong gpa, ulong length) => _memory!.GetHostPointerChecked(gpa, length);

    private bool ReadExactly(Span<byte> buffer, List<SafeFileHandle> fds)
    {
        var done = 0;
        while (done < buffer.Length)
        {
            var n = _connection!.Receive(buffer[done..], fds);
            if (n <= 0)
                return false;
            done += n;
        }
        return true;
    }

    private void ReplyU64(uint request, ulong value)
    {
        var payload = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(payload, value);
        Reply(request, payload);
    }

    private void Reply(uint request, byte[] payload)
    {
        var message = new byte[12 + payload.Length];
        VhostUserClient.WriteHeader(message, request, ReplyFlags, (uint)payload.Length);
        payload.CopyTo(message, 12);
        _connection!.Send(message);
    }

    public void Dispose()
    {
        _stopping = true;
        _stop?.Signal();
        _connection?.Shutdown();
        _listener.Dispose();
        _thread.Join(2000);
        _device?.Join(2000);
        _connection?.Dispose();
        foreach (var fd in _ownedFds)
            fd.Dispose();
        foreach (var ring in _rings)
        {
            ring.Kick?.Dispose();
            ring.Call?.Dispose();
        }
        _memory?.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    internal sealed class Ring
    {
        public ushort Size;
        public ulong Desc;
        public ulong Avail;
        public ulong Used;
        public ushort NextAvail;
        public ushort NextUsed;
        public EventFd? Kick;
        public EventFd? Call;
    }
}

internal static unsafe class MemoryRegionExtensions
{
    public static byte* GetHostPointerChecked(this MemoryRegion region, ulong gpa, ulong length)
    {
        if (gpa < region.GuestPhysicalAddress || gpa - region.GuestPhysicalAddress > region.Size || length > region.Size - (gpa - region.GuestPhysicalAddress))
            throw new InvalidOperationException($"0x{gpa:x}+{length} outside guest memory");
        return (byte*)region.HostAddress + (gpa - region.GuestPhysicalAddress);
    }
}
