using Vsock.Device.Connections;
using Vsock.Device.Diagnostics;
using Vsock.Device.Packets;

namespace Vsock.Device.Tests.TestSupport;

/// <summary>
/// The device's side of a stream, recorded: which streams asked for an RX turn and which finished. Like the
/// device's scheduler it marks a scheduled stream queued (so a stream asks once until its turn); the test's turn
/// clears the mark (<see cref="EndTurn"/>).
/// </summary>
internal sealed class FakeStreamHost(DeviceLog log) : IStreamHost
{
    public ulong GuestCid => DeviceRig.GuestCid;

    public DeviceLog Log { get; } = log;

    public DeviceCounters Counters { get; } = new();

    public List<VsockStream> Scheduled { get; } = [];

    public List<VsockStream> Finished { get; } = [];

    public void ScheduleRx(VsockStream stream)
    {
        Scheduled.Add(stream);
        stream.MarkRxQueued(true);
    }

    public void StreamFinished(VsockStream stream) => Finished.Add(stream);

    /// <summary>The stream had its turn: it may ask again.</summary>
    public static void EndTurn(VsockStream stream) => stream.MarkRxQueued(false);
}

/// <summary>A sibling link that keeps what a sibling stream sends to the other VM (payloads copied, arrays kept).</summary>
internal sealed class RecordingSiblingLink : ISiblingLink
{
    public List<(VsockHeader Header, byte[]? Payload)> Sent { get; } = [];

    public void Send(SiblingStream stream, in VsockHeader header, byte[]? payload) =>
        Sent.Add((header, payload?.AsSpan(0, (int)header.Len).ToArray()));
}
