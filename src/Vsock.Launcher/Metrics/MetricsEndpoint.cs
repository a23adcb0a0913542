using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Vsock.Launcher.Metrics;

/// <summary>
/// <c>GET /metrics</c> over plain HTTP/1.x on one TCP socket (<c>--metrics-listen</c>): enough HTTP for Prometheus
/// and curl, and nothing else. Each connection gets one response and is closed (<c>Connection: close</c>); a request
/// head must arrive whole within <see cref="RequestTimeout"/> and fit <see cref="MaxRequestHead"/> bytes; at most
/// <see cref="MaxConnections"/> are served at once, further ones are closed at once. No authentication and no TLS:
/// bind it to a trusted address. It runs on the thread pool, never on a VM's loop thread; a scrape reads the
/// counters through <see cref="MeterCollector"/>.
///
/// Why not OpenTelemetry's Prometheus exporter: see the README ("Metrics"): a beta package and the SDK for what is
/// one observable read per series, with a text format we would not control.
/// </summary>
internal sealed class MetricsEndpoint : IDisposable
{
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(5);
    public const int MaxRequestHead = 8192;
    public const int MaxConnections = 4;
    private const int SolSocket = 1;
    private const int SoReuseAddr = 2;

    private readonly Socket _listener;
    private readonly Func<string> _collect;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly IDisposable? _owned;
    private int _connections;

    private MetricsEndpoint(Socket listener, Func<string> collect, ILogger log, IDisposable? owned)
    {
        _listener = listener;
        _collect = collect;
        _log = log;
        _owned = owned;
        _accepting = Task.Run(AcceptAsync);
    }

    /// <summary>The daemon's endpoint: the meter <paramref name="meterName"/> read by a <see cref="MeterCollector"/> it owns.</summary>
    public static MetricsEndpoint StartForMeter(IPEndPoint endpoint, string meterName, ILogger log)
    {
        var collector = new MeterCollector(meterName);
        try
        {
            MetricsEndpoint started = Start(endpoint, collector.Collect, log, collector);
            log.LogInformation("serving metrics of {Meter} at http://{Endpoint}/metrics (no authentication)", meterName, started.LocalEndPoint);
            return started;
        }
        catch
        {
            collector.Dispose();
            throw;
        }
    }

    /// <summary>Where it listens (the port chosen when 0 was asked for).</summary>
    public IPEndPoint LocalEndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    /// <summary>Binds and listens now (a bind error is the caller's: the address is taken or not ours), then serves.</summary>
    /// <param name="owned">Disposed with the endpoint.</param>
    public static MetricsEndpoint Start(IPEndPoint endpoint, Func<string> collect, ILogger log, IDisposable? owned = null)
    {
        var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // SO_REUSEADDR alone: every scrape leaves a TIME_WAIT here (we close first), which must not keep a
            // restarted daemon from binding. Not SocketOptionName.ReuseAddress: on Linux .NET adds SO_REUSEPORT to it,
            // which would let a second daemon bind the same port and take half the scrapes.
            listener.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
            listener.Bind(endpoint);
            listener.Listen(16);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        return new MetricsEndpoint(listener, collect, log, owned);
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                _log.LogDebug("metrics endpoint: accept failed: {Message}", e.Message);
                continue;
            }

            if (Interlocked.Increment(ref _connections) > MaxConnections)
            {
                Interlocked.Decrement(ref _connections);
                client.Dispose();
                continue;
            }

            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(RequestTimeout);
            Reply reply = await ReadRequestAsync(client, timeout.Token).ConfigureAwait(false);
            await client.SendAsync(reply.Encode(), SocketFlags.None, timeout.Token).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            _log.LogDebug("metrics endpoint: {Type} serving a client: {Message}", e.GetType().Name, e.Message);
        }
        catch (Exception e)
        {
            // A failing instrument callback, say: the client gets nothing, the daemon goes on.
            _log.LogWarning(e, "metrics endpoint: serving a scrape failed");
        }
        finally
        {
            client.Dispose();
            Interlocked.Decrement(ref _connections);
        }
    }

    /// <summary>Reads the request head and decides the answer (a scrape is collected here).</summary>
    private async Task<Reply> ReadRequestAsync(Socket client, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxRequestHead];
        int length = 0;
        while (true)
        {
            int end = HeadEnd(buffer.AsSpan(0, length));
            if (end >= 0)
            {
                return Answer(Encoding.ASCII.GetString(buffer, 0, end));
            }

            if (length == buffer.Length)
            {
                return new Reply(431);
            }

            int n = await client.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                throw new SocketException((int)SocketError.ConnectionReset); // closed before a whole request head
            }

            length += n;
        }
    }

    private Reply Answer(string head)
    {
        int lineEnd = head.IndexOf('\n');
        string[] requestLine = (lineEnd < 0 ? head : head[..lineEnd]).TrimEnd('\r').Split(' ');
        if (requestLine.Length != 3 || !requestLine[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
        {
            return new Reply(400);
        }

        string method = requestLine[0];
        if (method is not ("GET" or "HEAD"))
        {
            return new Reply(405);
        }

        string target = requestLine[1];
        int query = target.IndexOf('?');
        if ((query < 0 ? target : target[..query]) != "/metrics")
        {
            return new Reply(404);
        }

        return new Reply(200, _collect(), HeadOnly: method == "HEAD");
    }

    /// <summary>The offset just past the blank line that ends a request head (CRLF or bare LF), or -1.</summary>
    private static int HeadEnd(ReadOnlySpan<byte> bytes)
    {
        int crlf = bytes.IndexOf("\r\n\r\n"u8);
        int lf = bytes.IndexOf("\n\n"u8);
        return crlf >= 0 && (lf < 0 || crlf < lf) ? crlf + 4 : lf >= 0 ? lf + 2 : -1;
    }

    /// <summary>One response, then the connection closes.</summary>
    private readonly record struct Reply(int Status, string? Metrics = null, bool HeadOnly = false)
    {
        public byte[] Encode()
        {
            string reason = Status switch
            {
                200 => "OK",
                400 => "Bad Request",
                404 => "Not Found",
                405 => "Method Not Allowed",
                _ => "Request Header Fields Too Large",
            };
            byte[] content = Encoding.UTF8.GetBytes(Metrics ?? $"{Status} {reason}: this endpoint serves GET /metrics\n");
            var head = new StringBuilder()
                .Append("HTTP/1.1 ").Append(Status).Append(' ').Append(reason).Append("\r\n")
                .Append("Content-Type: ").Append(Metrics is null ? "text/plain; charset=utf-8" : PrometheusText.ContentType).Append("\r\n")
                .Append("Content-Length: ").Append(content.Length).Append("\r\n")
                .Append(Status == 405 ? "Allow: GET, HEAD\r\n" : string.Empty)
                .Append("Connection: close\r\n\r\n");
            byte[] headBytes = Encoding.ASCII.GetBytes(head.ToString());
            return HeadOnly ? headBytes : [.. headBytes, .. content];
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        _accepting.Wait(TimeSpan.FromSeconds(1));
        _owned?.Dispose();
        _stop.Dispose(); // a client still being served sees ObjectDisposedException, which ends it like a cancel
    }
}
