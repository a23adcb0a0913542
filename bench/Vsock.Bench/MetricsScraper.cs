namespace Vsock.Bench;

/// <summary>
/// With <c>--metrics-scrape-ms N</c>: GETs the daemon's <c>/metrics</c> every N ms for the daemon's whole life, as a
/// Prometheus server would (at a far shorter interval than its usual 15 s), so the benchmark measures the daemon
/// with its endpoint on and in use. Counts scrapes and failures for the report.
/// </summary>
internal sealed class MetricsScraper : IAsyncDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _scrapes;
    private long _failures;
    private long _lastBytes;

    public MetricsScraper(string url, TimeSpan interval)
    {
        Url = url;
        _loop = Task.Run(() => LoopAsync(interval));
    }

    public string Url { get; }
    public long Scrapes => Interlocked.Read(ref _scrapes);
    public long Failures => Interlocked.Read(ref _failures);
    public long LastBytes => Interlocked.Read(ref _lastBytes);

    private async Task LoopAsync(TimeSpan interval)
    {
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                try
                {
                    var text = await _http.GetStringAsync(Url, _stop.Token);
                    if (!text.Contains("vsock_rx_bytes_total{guest_cid=", StringComparison.Ordinal))
                        throw new InvalidDataException("no vsock_rx_bytes_total series");
                    Interlocked.Exchange(ref _lastBytes, text.Length);
                    Interlocked.Increment(ref _scrapes);
                }
                catch (Exception e) when (e is HttpRequestException or InvalidDataException or TaskCanceledException && !_stop.IsCancellationRequested)
                {
                    Interlocked.Increment(ref _failures);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _loop;
        _http.Dispose();
        _stop.Dispose();
    }
}
