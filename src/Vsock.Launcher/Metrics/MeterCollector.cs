using System.Diagnostics.Metrics;
using System.Globalization;

namespace Vsock.Launcher.Metrics;

/// <summary>
/// Reads one meter's observable instruments on demand (a scrape) with a <see cref="MeterListener"/>: nothing is
/// collected, stored or aggregated between scrapes, and the data path is not involved at all (the VsockActors
/// instruments read the VMs' counters only when asked, see <c>VsockMeter</c>). Push instruments (Counter&lt;T&gt;
/// and the like) would need aggregation here; the meter has none, so they are not listened to.
/// </summary>
internal sealed class MeterCollector : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Lock _lock = new();
    private readonly List<MetricFamily> _families = [];

    public MeterCollector(string meterName)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name != meterName || KindOf(instrument) is not { } kind)
            {
                return;
            }

            var family = new MetricFamily(instrument.Name, instrument.Unit, instrument.Description, kind);
            lock (_lock)
            {
                _families.Add(family);
            }

            listener.EnableMeasurementEvents(instrument, family);
        };
        _listener.MeasurementsCompleted = (_, state) =>
        {
            lock (_lock)
            {
                _families.Remove((MetricFamily)state!);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, state) => Record(state, new MetricSample(Labels(tags), value)));
        _listener.SetMeasurementEventCallback<int>((_, value, tags, state) => Record(state, new MetricSample(Labels(tags), value)));
        _listener.SetMeasurementEventCallback<double>((_, value, tags, state) => Record(state, new MetricSample(Labels(tags), 0, value, IsReal: true)));
        _listener.Start();
    }

    /// <summary>Every instrument's current series as Prometheus text.</summary>
    public string Collect()
    {
        lock (_lock)
        {
            foreach (MetricFamily family in _families)
            {
                family.Samples.Clear();
            }

            _listener.RecordObservableInstruments(); // calls Record for each series, on this thread
            return PrometheusText.Format(_families);
        }
    }

    public void Dispose() => _listener.Dispose();

    private static void Record(object? state, MetricSample sample) => ((MetricFamily)state!).Samples.Add(sample);

    private static MetricKind? KindOf(Instrument instrument) => instrument switch
    {
        ObservableCounter<long> or ObservableCounter<int> or ObservableCounter<double> => MetricKind.Counter,
        ObservableUpDownCounter<long> or ObservableUpDownCounter<int> or ObservableUpDownCounter<double> => MetricKind.Gauge,
        ObservableGauge<long> or ObservableGauge<int> or ObservableGauge<double> => MetricKind.Gauge,
        _ => null,
    };

    private static KeyValuePair<string, string>[] Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var labels = new KeyValuePair<string, string>[tags.Length];
        for (int i = 0; i < tags.Length; i++)
        {
            labels[i] = new(PrometheusText.LabelName(tags[i].Key), Convert.ToString(tags[i].Value, CultureInfo.InvariantCulture) ?? string.Empty);
        }

        return labels;
    }
}
