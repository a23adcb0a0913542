using System.Runtime.InteropServices;
using Vsock.Device.VhostUser;
using Xunit.Abstractions;
using R = Vsock.Device.VhostUser.VhostUserRequest;

namespace Vsock.Device.Tests.VhostUser;

/// <summary>
/// Feeds reader and session with over 100,000 messages: plausible requests (so sessions reach running rings),
/// random garbage, and mutations of both (flipped bytes, wrong sizes, wrong fd counts, truncation), delivered
/// in random chunks. Only <see cref="VhostUserProtocolException"/> may come out; every reply is well-formed;
/// no fd and no mapping outlives its session. Seeded, so a failure reproduces.
/// </summary>
[Collection(FdCountingCollection.Name)]
public sealed class VhostUserFuzzTests(ITestOutputHelper output)
{
    private const ulong U = 0x7f00_0000_0000;
    private const int MessagesToFeed = 100_000;

    private sealed record Wire(byte[] Bytes, int FdCount);

    [Fact]
    public void Random_and_mutated_messages_only_ever_raise_protocol_errors()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers(); // no other test's stray handle gets finalized during the count
        var fdsBefore = TestFds.SessionKindFdCount();

        var random = new Random(0x5eed);
        var fds = new TestFds();
        var mapper = new NativeMemoryMapper { MaxSize = 1 << 20 };
        var reply = new byte[VhostUserCodec.MaxMessageSize];
        var errors = new Dictionary<VhostUserError, int>();
        var fed = 0; // messages the reader produced or failed on: what really went in
        var handled = 0;
        var ringStarts = 0;
        var cleanEnds = 0;

        while (fed < MessagesToFeed)
        {
            var backend = new RecordingBackend
            {
                ProtocolFeatures = random.Next(4) == 0 ? VhostUserSession.SupportedProtocolFeatures & (ulong)random.NextInt64() : VhostUserSession.SupportedProtocolFeatures,
                QueueCount = random.Next(4) == 0 ? random.Next(1, 5) : 3,
                MaxQueueSize = 1 << random.Next(0, 11),
            };
            var script = Connection(random, backend.ProtocolFeatures);
            using var transport = new FakeTransport { ChunkRandom = random.Next(3) == 0 ? new Random(random.Next()) : null };
            foreach (var wire in script)
            {
                if (wire.Bytes.Length > 0) // fds need a byte to travel with on a real socket
                    transport.Enqueue(wire.Bytes, fds.Open(wire.FdCount));
            }
            transport.Complete();

            var session = new VhostUserSession(backend, mapper);
            var reader = new VhostUserReader(transport);
            try
            {
                while (true)
                {
                    fed++;
                    using var message = reader.ReadMessage();
                    if (message is null)
                    {
                        fed--;
                        break;
                    }

                    var n = session.Handle(message, reply);
                    handled++;
                    if (n > 0)
                        CheckReply(message.Request, reply.AsSpan(0, n));
                }
                cleanEnds++;
            }
            catch (VhostUserProtocolException e)
            {
                errors[e.Error] = errors.GetValueOrDefault(e.Error) + 1;
            }
            finally
            {
                session.Dispose();
            }
            ringStarts += backend.Starts.Count;
            Assert.Empty(backend.Running);
            Assert.Empty(backend.CallFds);
            Assert.Equal(0, mapper.Live);
        }
        output.WriteLine($"{fed} messages fed, {handled} handled, {ringStarts} ring starts, {cleanEnds} clean ends; errors: {string.Join(", ", errors)}");

        Assert.Equal(0, fds.StillOpen);
        Assert.Equal(fdsBefore, TestFds.SessionKindFdCount());
        // The run went deep, not just bouncing off headers.
        Assert.True(handled > MessagesToFeed / 2, $"only {handled} messages reached the session");
        Assert.True(ringStarts > 1000, $"only {ringStarts} ring starts");
        Assert.True(cleanEnds > 100, $"only {cleanEnds} sessions ended cleanly");
        Assert.True(errors.Count >= 10, $"only these errors occurred: {string.Join(", ", errors)}");
    }

    private static void CheckReply(R request, ReadOnlySpan<byte> reply)
    {
        var header = MemoryMarshal.Read<VhostUserHeader>(reply);
        Assert.Equal(request, header.Request);
        Assert.Equal(VhostUserCodec.ReplyFlag | VhostUserCodec.Version, header.Flags);
        Assert.Equal(reply.Length - VhostUserCodec.HeaderSize, (int)header.Size);
    }

    /// <summary>A QEMU-like start, then plausible requests, with mutations sprinkled over all of it.</summary>
    private static List<Wire> Connection(Random random, ulong offer)
    {
        var plain = new List<Wire>();
        if (random.Next(4) != 0)
            plain.AddRange(QemuStart(random, offer));
        var tail = random.Next(0, 40);
        for (var i = 0; i < tail; i++)
            plain.Add(random.Next(10) == 0 ? Garbage(random) : Plausible(random));
        var mutationRate = random.Next(3) switch { 0 => 0, 1 => 30, _ => 8 };
        return plain.Select(w => mutationRate > 0 && random.Next(mutationRate) == 0 ? Mutate(random, w) : w).ToList();
    }

    private static Wire Make(R request, byte[]? payload = null, int fds = 0, bool needReply = false) =>
        new(Frontend.Encode(request, payload, needReply), fds);

    private static IEnumerable<Wire> QemuStart(Random random, ulong offer)
    {
        var needReply = random.Next(2) == 0;
        yield return Make(R.GetFeatures);
        yield return Make(R.GetProtocolFeatures);
        yield return Make(R.SetProtocolFeatures, Frontend.U64(offer));
        if ((offer & VhostUserProtocolFeatures.Bit(VhostUserProtocolFeatures.Mq)) != 0)
            yield return Make(R.GetQueueNum);
        yield return Make(R.SetOwner);
        for (uint i = 0; i < 2; i++)
        {
            yield return Make(R.SetVringCall, Frontend.U64(i), 1);
            yield return Make(R.SetVringErr, Frontend.U64(i), 1);
        }
        if ((offer & VhostUserProtocolFeatures.Bit(VhostUserProtocolFeatures.Config)) != 0)
            yield return Make(R.GetConfig, Frontend.Config(0, 8));
        yield return Make(R.SetFeatures, Frontend.U64(RecordingBackend.VsockFeatures));
        yield return Make(R.SetMemTable, Frontend.MemTable(Frontend.Region(0, 0x40000, U)), 1, needReply);
        for (uint i = 0; i < 2; i++)
        {
            var desc = 0x1000UL + 0x4000UL * i;
            yield return Make(R.SetVringNum, Frontend.State(i, 1));
            yield return Make(R.SetVringBase, Frontend.State(i, 0));
            yield return Make(R.SetVringAddr, Frontend.Addr(i, U + desc, U + desc + 0x2000, U + desc + 0x1000));
            yield return Make(R.SetVringKick, Frontend.U64(i), 1);
        }
        for (uint i = 0; i < 2; i++)
            yield return Make(R.SetVringEnable, Frontend.State(i, 1), needReply: needReply);
    }

    private static readonly R[] Handled =
    [
        R.GetFeatures, R.SetFeatures, R.SetOwner, R.ResetOwner, R.SetMemTable, R.SetVringNum, R.SetVringAddr,
        R.SetVringBase, R.GetVringBase, R.SetVringKick, R.SetVringCall, R.SetVringErr, R.GetProtocolFeatures,
        R.SetProtocolFeatures, R.GetQueueNum, R.SetVringEnable, R.GetConfig, R.SetConfig, R.ResetDevice,
        R.GetMaxMemSlots, R.AddMemReg, R.RemMemReg, R.SetStatus, R.GetStatus,
    ];

    /// <summary>A request with values near the valid ones: valid often, off by a little often.</summary>
    private static Wire Plausible(Random random)
    {
        var request = Handled[random.Next(Handled.Length)];
        var needReply = random.Next(3) == 0;
        uint Index() => (uint)random.Next(0, 5);
        ulong Gpa() => (ulong)random.Next(0, 0x50) * 0x1000 + (random.Next(8) == 0 ? (ulong)random.Next(16) : 0);
        VhostUserMemoryRegion Region() => Frontend.Region(Gpa(), (ulong)random.Next(0, 0x41) * 0x1000, U + Gpa(), random.Next(4) == 0 ? Gpa() : 0);
        switch (request)
        {
            case R.SetFeatures:
                return Make(request, Frontend.U64(random.Next(3) switch
                {
                    0 => RecordingBackend.VsockFeatures,
                    1 => RecordingBackend.VsockFeatures & ~(1UL << 30),
                    _ => (ulong)random.NextInt64() & RecordingBackend.VsockFeatures | (random.Next(4) == 0 ? 1UL << random.Next(64) : 0),
                }), needReply: needReply);
            case R.SetProtocolFeatures:
                return Make(request, Frontend.U64(random.Next(3) == 0 ? 1UL << random.Next(20) : VhostUserSession.SupportedProtocolFeatures & (ulong)random.NextInt64()), needReply: needReply);
            case R.SetMemTable:
                {
                    var regions = Enumerable.Range(0, random.Next(1, 4)).Select(_ => Region()).ToArray();
                    return Make(request, Frontend.MemTable(regions), regions.Length, needReply);
                }
            case R.AddMemReg:
                return Make(request, Frontend.SingleRegion(Region()), 1, needReply);
            case R.RemMemReg:
                return Make(request, Frontend.SingleRegion(random.Next(2) == 0 ? Frontend.Region(0, 0x40000, U) : Region()), random.Next(2), needReply);
            case R.SetVringNum:
                return Make(request, Frontend.State(Index(), random.Next(4) == 0 ? (uint)random.Next(0, 3000) : 1u << random.Next(0, 12)), needReply: needReply);
            case R.SetVringAddr:
                return Make(request, Frontend.Addr(Index(), U + Gpa(), U + Gpa(), U + Gpa(), (uint)(random.Next(8) == 0 ? random.Next(4) : 0)), needReply: needReply);
            case R.SetVringBase:
                return Make(request, Frontend.State(Index(), (uint)random.Next(0, 0x10002)), needReply: needReply);
            case R.GetVringBase:
                return Make(request, Frontend.State(Index(), 0), needReply: needReply);
            case R.SetVringEnable:
                return Make(request, Frontend.State(Index(), (uint)random.Next(0, 3)), needReply: needReply);
            case R.SetVringKick or R.SetVringCall or R.SetVringErr:
                {
                    var noFd = random.Next(4) == 0;
                    var value = Index() | (noFd ? 0x100UL : 0) | (random.Next(20) == 0 ? 0x200UL : 0);
                    return Make(request, Frontend.U64(value), noFd ? 0 : 1, needReply);
                }
            case R.GetConfig or R.SetConfig:
                return Make(request, Frontend.Config((uint)random.Next(0, 10), (uint)random.Next(0, 10), (uint)random.Next(0, 3)), needReply: needReply);
            case R.SetStatus:
                return Make(request, Frontend.U64((ulong)random.Next(0, 0x120)), needReply: needReply);
            default: // requests without payload
                return Make(request, needReply: needReply);
        }
    }

    /// <summary>Any request code (handled or not), random flags and payload, random fds.</summary>
    private static Wire Garbage(Random random)
    {
        var payload = new byte[random.Next(0, 300)];
        random.NextBytes(payload);
        var bytes = Frontend.Encode((R)random.Next(0, 50), payload);
        if (random.Next(2) == 0)
            BitConverter.TryWriteBytes(bytes.AsSpan(4), (uint)random.Next(0, 16));
        return new Wire(bytes, random.Next(4) == 0 ? random.Next(0, 4) : 0);
    }

    private static Wire Mutate(Random random, Wire wire)
    {
        var bytes = (byte[])wire.Bytes.Clone();
        var fdCount = wire.FdCount;
        switch (random.Next(8))
        {
            case 0: // flip a few bits anywhere
                for (var i = random.Next(1, 4); i > 0; i--)
                    bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
                break;
            case 1: // lie about the size
                BitConverter.TryWriteBytes(bytes.AsSpan(8), random.Next(3) == 0 ? (uint)random.Next() : (uint)random.Next(0, 64));
                break;
            case 2: // cut the message short (the next one's bytes then land in it)
                bytes = bytes[..random.Next(0, bytes.Length)];
                break;
            case 3: // trailing bytes
                bytes = [.. bytes, .. Enumerable.Range(0, random.Next(1, 16)).Select(_ => (byte)random.Next(256))];
                break;
            case 4: // another request code with this payload
                BitConverter.TryWriteBytes(bytes.AsSpan(0), (uint)random.Next(0, 50));
                break;
            case 5: // wrong fd count (over the limit sometimes)
                fdCount = random.Next(10) == 0 ? VhostUserCodec.MaxFds + 1 : Math.Max(0, fdCount + random.Next(-1, 3));
                break;
            case 6: // toggle NEED_REPLY or set other flags
                bytes[4] ^= (byte)(random.Next(2) == 0 ? (int)VhostUserCodec.NeedReplyFlag : 1 << random.Next(8));
                break;
            default: // overwrite a payload word with an extreme value
                if (bytes.Length >= VhostUserCodec.HeaderSize + 8)
                {
                    var at = random.Next(VhostUserCodec.HeaderSize, bytes.Length - 7);
                    BitConverter.TryWriteBytes(bytes.AsSpan(at), random.Next(3) switch { 0 => ulong.MaxValue, 1 => 0UL, _ => 1UL << 63 });
                }
                break;
        }
        return new Wire(bytes, fdCount);
    }
}
