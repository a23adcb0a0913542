using System.Runtime.InteropServices;
using Vsock.Device.Backend;
using Vsock.Device.VhostUser;
using static Vsock.Device.VhostUser.VhostUserProtocolFeatures;

namespace Vsock.Fuzz.Targets.VhostUser;

/// <summary>
/// The vhost-user reader and session over the production <see cref="VsockBackend"/>, fed what a VMM sends.
///
/// Input: one config byte, then segments to the end of the input.
/// <code>
/// config:  bits 0-1 protocol features offered: 0 MQ|CONFIG (rust-vmm's 0x201), 1 + REPLY_ACK, 2-3 all the session supports
///          bits 2-3 largest ring: 1024, 256, 32768, 1
/// segment: u8 control (bits 0-5: fds attached, 0-63; bits 6-7: longest read 0 unlimited, 1, 5, 12 bytes),
///          u16le length, then length bytes (fewer at the end of the input)
/// </code>
/// Each segment is one <c>sendmsg</c> of the VMM; its fds are fresh eventfds (512 per input at most). Messages are read, handled and
/// answered as the device actor does until the stream ends or a protocol error ends the session.
///
/// Invariants: only <see cref="VhostUserProtocolException"/> comes out of the reader and the session, and its
/// message names the request; no message carries more than 32 fds or 4096 payload bytes; every reply is framed
/// REPLY|1 for the request it answers, and a NEED_REPLY request gets one when REPLY_ACK is on; a rejection that
/// REPLY_ACK can report is reported, not thrown; the backend sees every memory table the session uses and the
/// backend contract (<see cref="CheckedBackend"/>) holds; after the disconnect every fd is closed and every
/// mapping released.
/// </summary>
internal sealed class VhostUserTarget : IFuzzTarget
{
    public const ulong RustVmmProtocolFeatures = (1UL << Mq) | (1UL << Config);
    private const int MaxFdsPerInput = 512;
    private static readonly int[] Chunks = [0, 1, 5, 12];
    private static readonly int[] MaxQueueSizes = [1024, 256, 32768, 1];

    private readonly byte[] _reply = new byte[VhostUserCodec.MaxMessageSize];

    public string Name => "vhost-user";

    public IEnumerable<(string Name, byte[] Input)> Seeds() => VhostUserSeeds.All();

    public string Run(ReadOnlySpan<byte> input)
    {
        var reader = new FuzzInput(input);
        var config = reader.U8();
        var protocolFeatures = (config & 3) switch
        {
            0 => RustVmmProtocolFeatures,
            1 => RustVmmProtocolFeatures | (1UL << ReplyAck),
            _ => VhostUserSession.SupportedProtocolFeatures,
        };
        var maxQueueSize = MaxQueueSizes[(config >> 2) & 3];

        using var fds = new FdLedger();
        var segments = new List<Segment>();
        var bytes = input.ToArray(); // segments are views into one copy of the input
        while (!reader.IsEmpty)
        {
            var control = reader.U8();
            var length = reader.U16();
            var start = bytes.Length - reader.Remaining;
            var payload = reader.Bytes(length);
            // Past MaxFdsPerInput segments carry no fds: the process has 20,000 at most, and an input could ask millions.
            var fdCount = Math.Min(control & 0x3f, MaxFdsPerInput - fds.Count);
            segments.Add(new Segment(bytes.AsMemory(start, payload.Length), fds.Open(fdCount), Chunks[control >> 6]));
        }

        var mapper = new FakeMemoryMapper();
        var vsock = new VsockBackend(3, maxQueueSize, NoDeviceEvents.Instance) { ProtocolFeatures = protocolFeatures };
        var backend = new CheckedBackend(vsock);
        var session = new VhostUserSession(backend, mapper);
        var handled = 0;
        string end;
        using (var adapter = new ReaderAdapter(segments))
        {
            end = Serve(adapter, session, backend, ref handled);
            session.Dispose();
            vsock.Dispose();
        }

        Invariant.Holds(backend.RunningCount == 0, "rings still running after the session was disposed");
        Invariant.Holds(mapper.Live == 0, $"{mapper.Live} memory regions not released after the session ended");
        Invariant.Holds(fds.StillOpen == 0, $"{fds.StillOpen} of {fds.Count} fds still open after the session ended");
        return $"{end} after {handled} messages, {backend.Starts} ring starts";
    }

    private string Serve(ReaderAdapter adapter, VhostUserSession session, CheckedBackend backend, ref int handled)
    {
        while (true)
        {
            VhostUserMessage? message;
            try
            {
                message = adapter.Next();
            }
            catch (VhostUserProtocolException e)
            {
                return $"reader: {e.Error}";
            }
            catch (Exception e)
            {
                throw Invariant.Broken($"the reader threw {e.GetType().Name}: {e.Message}", e);
            }
            if (message is null)
                return "end of stream";

            using (message)
            {
                Invariant.Holds(message.Fds.Count <= VhostUserCodec.MaxFds, "a message carries more fds than the limit");
                Invariant.Holds(message.Payload.Length <= VhostUserCodec.MaxPayloadSize, "a message payload exceeds the limit");
                var ackable = message.NeedReply && !HasOwnReply(message.Request);
                int length;
                try
                {
                    length = session.Handle(message, _reply);
                }
                catch (VhostUserProtocolException e)
                {
                    var name = VhostUserCodec.Name(message.Request);
                    Invariant.Holds(e.Message.StartsWith(name, StringComparison.Ordinal), $"the error \"{e.Message}\" does not name {name}");
                    Invariant.Holds(!(e.IsRejection && ackable && ReplyAckOn(session)),
                        $"a rejection REPLY_ACK could report was thrown instead: {e.Message}");
                    return $"session: {e.Error}";
                }
                catch (Exception e)
                {
                    throw Invariant.Broken($"the session threw {e.GetType().Name} on {message}: {e.Message}", e);
                }
                handled++;
                CheckReply(message, length, expected: HasOwnReply(message.Request) || (ackable && ReplyAckOn(session)));
                if (length > 0)
                    adapter.Reply(_reply.AsSpan(0, length));
                Invariant.Holds(ReferenceEquals(backend.Memory, session.Memory) || (backend.Memory.Regions.Count == 0 && session.Memory.Regions.Count == 0),
                    "the backend was not told of the memory table in effect");
            }
        }
    }

    private void CheckReply(VhostUserMessage message, int length, bool expected)
    {
        if (length == 0)
        {
            Invariant.Holds(!expected, $"no reply to {message}");
            return;
        }
        Invariant.Holds(expected, $"a reply to {message}, which takes none");
        Invariant.Holds(length >= VhostUserCodec.HeaderSize && length <= VhostUserCodec.MaxMessageSize, $"reply length {length}");
        var header = MemoryMarshal.Read<VhostUserHeader>(_reply);
        Invariant.Holds(header.Request == message.Request, "the reply answers another request");
        Invariant.Holds(header.Flags == (VhostUserCodec.ReplyFlag | VhostUserCodec.Version), "the reply is not flagged REPLY|1");
        Invariant.Holds(header.Size == (uint)(length - VhostUserCodec.HeaderSize), "the reply's size field disagrees with its length");
        if (!HasOwnReply(message.Request))
        {
            Invariant.Holds(header.Size == 8, "a REPLY_ACK answer is not a u64");
            Invariant.Holds(MemoryMarshal.Read<ulong>(_reply.AsSpan(VhostUserCodec.HeaderSize)) <= 1, "a REPLY_ACK answer is neither 0 nor 1");
        }
    }

    private static bool ReplyAckOn(VhostUserSession session) => (session.AckedProtocolFeatures & (1UL << ReplyAck)) != 0;

    private static bool HasOwnReply(VhostUserRequest request) => request is
        VhostUserRequest.GetFeatures or VhostUserRequest.GetProtocolFeatures or VhostUserRequest.GetVringBase or
        VhostUserRequest.GetQueueNum or VhostUserRequest.GetConfig or VhostUserRequest.GetMaxMemSlots or
        VhostUserRequest.GetStatus;
}
