using System.Diagnostics;

namespace Vsock.Device.Diagnostics;

/// <summary>
/// One VM's log, in front of the actor layer's logger (<see cref="IDeviceLog"/>). Lines a guest can provoke
/// at will go through <see cref="Allow"/>: at most <see cref="Burst"/> lines per <see cref="Window"/> and
/// topic; the rest are counted, and the first line after a window with suppressed lines says how many
/// were dropped. A broken guest therefore costs a few lines per window, not one per kick: a million kicks
/// of a corrupt ring wrote 105,000-145,000 lines (16-22 MB) before (issue 11).
///
/// Used on the VM's event-loop thread only.
/// </summary>
public sealed class DeviceLog
{
    public const int Burst = 10;
    public static readonly TimeSpan Window = TimeSpan.FromSeconds(10);

    private readonly IDeviceLog _sink;
    private readonly Func<long> _clock;
    private readonly long _windowTicks;
    private readonly TopicState[] _topics = new TopicState[Enum.GetValues<LogTopic>().Length];

    private struct TopicState
    {
        public long WindowStart;
        public int Written;
        public long Suppressed;
    }

    /// <param name="clock">Stopwatch ticks (tests pass their own).</param>
    public DeviceLog(IDeviceLog sink, Func<long>? clock = null)
    {
        _sink = sink ?? throw new ArgumentNullException(nameof(sink));
        _clock = clock ?? Stopwatch.GetTimestamp;
        _windowTicks = (long)(Window.TotalSeconds * Stopwatch.Frequency);
        for (var i = 0; i < _topics.Length; i++)
            _topics[i].WindowStart = long.MinValue;
    }

    public static DeviceLog Null { get; } = new(NullDeviceLog.Instance);

    /// <summary>Lines dropped so far, all topics (tests and metrics).</summary>
    public long SuppressedTotal { get; private set; }

    public void Debug(string message) => _sink.Debug(message);

    public void Info(string message) => _sink.Info(message);

    public void Warning(string message) => _sink.Warning(message);

    /// <summary>
    /// True if a line about <paramref name="topic"/> may be written now; the caller then formats and
    /// writes it (so a suppressed line costs no formatting). Reports the lines suppressed in the window before.
    /// </summary>
    public bool Allow(LogTopic topic)
    {
        ref var state = ref _topics[(int)topic];
        var now = _clock();
        if (now - state.WindowStart >= _windowTicks || state.WindowStart == long.MinValue)
        {
            if (state.Suppressed > 0)
                _sink.Warning($"{state.Suppressed} more {Describe(topic)} message(s) suppressed in the last {Window.TotalSeconds:0} s");
            state.WindowStart = now;
            state.Written = 0;
            state.Suppressed = 0;
        }
        if (state.Written < Burst)
        {
            state.Written++;
            return true;
        }
        state.Suppressed++;
        SuppressedTotal++;
        return false;
    }

    /// <summary>Writes <paramref name="message"/> as a warning if the topic's budget allows it.</summary>
    public void Warning(LogTopic topic, string message)
    {
        if (Allow(topic))
            _sink.Warning(message);
    }

    private static string Describe(LogTopic topic) => topic switch
    {
        LogTopic.BadChain => "bad descriptor chain",
        LogTopic.BadPacket => "bad packet",
        LogTopic.SpoofedCid => "spoofed source CID",
        LogTopic.CreditViolation => "credit violation",
        LogTopic.StreamProtocol => "stream protocol",
        LogTopic.HostSocket => "host socket",
        LogTopic.Limit => "limit",
        LogTopic.Timeout => "timeout",
        LogTopic.Unreachable => "unreachable CID",
        LogTopic.StreamsDropped => "streams dropped",
        _ => topic.ToString(),
    };
}
