using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Vsock.Launcher.Metrics;

namespace Vsock.Launcher.Tests.Metrics;

/// <summary>The endpoint's HTTP, over loopback: a scrape, the other answers, and clients that misbehave.</summary>
public sealed class MetricsEndpointTests : IDisposable
{
    private const string Body = "# TYPE x_total counter\nx_total 1\n";
    private int _scrapes;
    private readonly MetricsEndpoint _endpoint;

    public MetricsEndpointTests() =>
        _endpoint = MetricsEndpoint.Start(new IPEndPoint(IPAddress.Loopback, 0), () =>
        {
            Interlocked.Increment(ref _scrapes);
            return Body;
        }, NullLogger.Instance);

    public void Dispose() => _endpoint.Dispose();

    /// <summary>Sends <paramref name="request"/> as is and returns everything until the endpoint closes.</summary>
    private async Task<string> ExchangeAsync(string request)
    {
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await client.ConnectAsync(_endpoint.LocalEndPoint, cts.Token);
        await client.SendAsync(Encoding.ASCII.GetBytes(request), cts.Token);
        return await ReadToEndAsync(client, cts.Token);
    }

    private static async Task<string> ReadToEndAsync(Socket client, CancellationToken cancellationToken)
    {
        var received = new MemoryStream();
        var buffer = new byte[4096];
        int n;
        while ((n = await client.ReceiveAsync(buffer, cancellationToken)) > 0)
            received.Write(buffer, 0, n);
        return Encoding.UTF8.GetString(received.ToArray());
    }

    [Fact]
    public async Task Get_metrics_answers_the_text_format_with_its_length_and_closes()
    {
        string response = await ExchangeAsync("GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n");

        Assert.Equal(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n" +
            $"Content-Length: {Body.Length}\r\nConnection: close\r\n\r\n{Body}",
            response);
    }

    [Fact]
    public async Task A_query_string_and_bare_line_feeds_are_accepted()
    {
        Assert.EndsWith(Body, await ExchangeAsync("GET /metrics?name[]=x HTTP/1.0\n\n"));
    }

    [Fact]
    public async Task Head_gets_the_headers_only()
    {
        string response = await ExchangeAsync("HEAD /metrics HTTP/1.1\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", response);
        Assert.EndsWith($"Content-Length: {Body.Length}\r\nConnection: close\r\n\r\n", response);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found\r\n")]
    [InlineData("GET /metrics/x HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found\r\n")]
    [InlineData("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 Method Not Allowed\r\n")]
    [InlineData("GET /metrics\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n")]
    [InlineData("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n")]
    public async Task Anything_else_gets_an_error_and_no_scrape(string request, string statusLine)
    {
        string response = await ExchangeAsync(request);

        Assert.StartsWith(statusLine, response);
        Assert.Contains("Connection: close\r\n", response);
        Assert.Equal(0, Volatile.Read(ref _scrapes));
    }

    [Fact]
    public async Task A_request_head_larger_than_the_limit_is_refused()
    {
        string response = await ExchangeAsync("GET /metrics HTTP/1.1\r\nX-Filler: " + new string('a', MetricsEndpoint.MaxRequestHead) + "\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 431 ", response);
    }

    [Fact]
    public async Task A_client_that_never_finishes_its_request_is_closed_after_the_timeout_and_others_are_served_meanwhile()
    {
        using var idle = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await idle.ConnectAsync(_endpoint.LocalEndPoint, cts.Token);
        await idle.SendAsync("GET /metr"u8.ToArray(), cts.Token);
        var started = DateTime.UtcNow;

        Assert.EndsWith(Body, await ExchangeAsync("GET /metrics HTTP/1.1\r\n\r\n"));

        Assert.Equal(string.Empty, await ReadToEndAsync(idle, cts.Token)); // closed without an answer
        var waited = DateTime.UtcNow - started;
        Assert.InRange(waited, MetricsEndpoint.RequestTimeout - TimeSpan.FromSeconds(1), MetricsEndpoint.RequestTimeout + TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void A_taken_address_is_the_caller_s_error()
    {
        Assert.Throws<SocketException>(() => MetricsEndpoint.Start(_endpoint.LocalEndPoint, () => Body, NullLogger.Instance));
    }
}
