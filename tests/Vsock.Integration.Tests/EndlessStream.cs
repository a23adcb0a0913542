using System.Diagnostics;
using System.Net.Sockets;
using Vsock.Testing;

namespace Vsock.Integration.Tests;

/// <summary>
/// A host application that streams into a guest without end (the guest's in-driver sink consumes it),
/// and the rate the guest sees: for tests that need a VM visibly working while something else happens.
/// </summary>
public sealed class EndlessStream : IAsyncDisposable
{
    private readonly SyntheticGuest _guest;
    private readonly Socket _host;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _sender;

    private EndlessStream(SyntheticGuest guest, Socket host)
    {
        _guest = guest;
        _host = host;
        _sender = Task.Run(SendAsync);
    }

    /// <summary>Connects a host application to <paramref name="guest"/> through the daemon and starts streaming.</summary>
    public static async Task<EndlessStream> StartAsync(SyntheticGuest guest, string udsPath)
    {
        using var cts = new CancellationTokenSource(Scenario.Timeout);
        var port = Scenario.NextPort();
        using var listener = guest.Listen(port);
        var host = await HostVsock.ConnectAsync(udsPath, port, Scenario.Timeout);
        try
        {
            var stream = await listener.AcceptAsync(cts.Token);
            _ = stream.SinkAsync(long.MaxValue);
            return new EndlessStream(guest, host);
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    /// <summary>Payload bytes the guest has received so far.</summary>
    public long BytesReceived => _guest.Statistics.PayloadBytesReceived;

    /// <summary>Bytes per second the guest receives over the next <paramref name="window"/>.</summary>
    public async Task<double> MeasureAsync(TimeSpan window)
    {
        var start = BytesReceived;
        var clock = Stopwatch.StartNew();
        await Task.Delay(window);
        return (BytesReceived - start) / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Waits until the guest has received <paramref name="bytes"/> more bytes (the stream still moves).</summary>
    public async Task<bool> AdvancesAsync(long bytes, TimeSpan timeout)
    {
        var target = BytesReceived + bytes;
        var clock = Stopwatch.StartNew();
        while (BytesReceived < target)
        {
            if (clock.Elapsed > timeout)
                return false;
            await Task.Delay(10);
        }
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _host.Dispose();
        try
        {
            await _sender;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        _stop.Dispose();
    }

    private async Task SendAsync()
    {
        var chunk = TestPattern.RandomBytes(64 * 1024, 77);
        while (!_stop.IsCancellationRequested)
            await _host.SendAsync(chunk, _stop.Token);
    }
}
