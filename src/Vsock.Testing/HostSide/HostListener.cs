using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Vsock.Testing.HostSide;

/// <summary>What a host-side listener saw on one accepted connection.</summary>
public sealed record HostConnection(int Index, long BytesRead, ulong Sha, string? Error)
{
    public override string ToString() =>
        $"#{Index} read={BytesRead} sha={TestPattern.Hex(Sha)}{(Error is null ? "" : " error=" + Error)}";
}

/// <summary>
/// A host application listening where the daemon sends guest-initiated connections for port P
/// (<c>&lt;uds_path&gt;_P</c>, <see cref="HostVsock.PortPath"/>), or at any path. Each accepted connection is served
/// on its own task by a <see cref="Behaviour"/> or a function of the caller's, and recorded; for tests that let many
/// guest connections arrive at once and check them afterwards. One connection at a time:
/// <see cref="HostVsock.Listen"/> and <see cref="Socket.AcceptAsync(CancellationToken)"/>.
/// </summary>
public sealed class HostListener : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<HostConnection> _completed = new();
    private readonly ConcurrentBag<Task> _handlers = [];
    private readonly Func<Socket, int, CancellationToken, Task<HostConnection>> _serve;
    private readonly Task _acceptLoop;
    private int _accepted;

    private HostListener(string path, Func<Socket, int, CancellationToken, Task<HostConnection>> serve)
    {
        Path = path;
        _serve = serve;
        _listener = HostVsock.ListenAt(path);
        _acceptLoop = AcceptLoopAsync();
    }

    public enum Behaviour
    {
        /// <summary>Read to EOF, reply <c>SINK bytes=N sha=H\n</c> (what the guest program's send mode checks), close.</summary>
        SinkWithReply,

        /// <summary>Write back everything read; half-close at EOF.</summary>
        Echo,

        /// <summary>Wait a little (so the peer's close races the transfer), then read until EOF or error.</summary>
        SlowDrain,
    }

    public string Path { get; }

    public int Accepted => Volatile.Read(ref _accepted);

    public IReadOnlyList<HostConnection> Completed => [.. _completed.OrderBy(c => c.Index)];

    /// <summary>Listens on <c>uds-path_port</c>; each connection served by <paramref name="behaviour"/>.</summary>
    public static HostListener Start(string udsPath, uint port, Behaviour behaviour) => Start(HostVsock.PortPath(udsPath, port), behaviour);

    public static HostListener Start(string path, Behaviour behaviour) => Start(path, Serve(behaviour));

    /// <summary>A listener at <paramref name="path"/> whose connections are served by <paramref name="serve"/> (socket, 1-based index, cancellation).</summary>
    public static HostListener Start(string path, Func<Socket, int, CancellationToken, Task<HostConnection>> serve) => new(path, serve);

    public static Func<Socket, int, CancellationToken, Task<HostConnection>> Serve(Behaviour behaviour) => behaviour switch
    {
        Behaviour.SinkWithReply => SinkWithReplyAsync,
        Behaviour.Echo => EchoAsync,
        Behaviour.SlowDrain => SlowDrainAsync,
        _ => throw new ArgumentOutOfRangeException(nameof(behaviour)),
    };

    /// <summary>Waits until <paramref name="count"/> connections have been served to the end.</summary>
    public async Task<IReadOnlyList<HostConnection>> WaitForConnectionsAsync(int count, TimeSpan timeout)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (_completed.Count < count)
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException(
                    $"host listener {Path}: {_completed.Count} of {count} connections finished after {timeout.TotalSeconds:0} s "
                    + $"({Accepted} accepted): {string.Join("; ", Completed)}");
            }
            await Task.Delay(20);
        }
        return Completed;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        try
        {
            await _acceptLoop;
            await Task.WhenAll(_handlers).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or SocketException or ObjectDisposedException)
        {
            // Shutting down: unfinished handlers were cancelled.
        }
        _stop.Dispose();
        File.Delete(Path);
    }

    private static async Task<HostConnection> SinkWithReplyAsync(Socket socket, int index, CancellationToken ct)
    {
        var (bytes, sha) = await PatternTransfer.ReceiveAsync(socket, ct);
        var reply = string.Create(CultureInfo.InvariantCulture, $"SINK bytes={bytes} sha={TestPattern.Hex(sha)}\n");
        await socket.SendAllAsync(Encoding.ASCII.GetBytes(reply), ct);
        socket.Shutdown(SocketShutdown.Send);
        return new HostConnection(index, bytes, sha, null);
    }

    private static async Task<HostConnection> EchoAsync(Socket socket, int index, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        var sha = TestPattern.FnvOffset;
        long total = 0;
        while (true)
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct);
            if (n == 0)
                break;
            sha = TestPattern.Fnv1a(sha, buffer.AsSpan(0, n));
            total += n;
            await socket.SendAllAsync(buffer.AsMemory(0, n), ct);
        }
        socket.Shutdown(SocketShutdown.Send);
        return new HostConnection(index, total, sha, null);
    }

    private static async Task<HostConnection> SlowDrainAsync(Socket socket, int index, CancellationToken ct)
    {
        await Task.Delay(500, ct);
        var buffer = new byte[64 * 1024];
        var sha = TestPattern.FnvOffset;
        long total = 0;
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct);
                if (n == 0)
                    return new HostConnection(index, total, sha, null);
                sha = TestPattern.Fnv1a(sha, buffer.AsSpan(0, n));
                total += n;
            }
        }
        catch (SocketException e)
        {
            return new HostConnection(index, total, sha, e.SocketErrorCode.ToString());
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            var index = Interlocked.Increment(ref _accepted);
            _handlers.Add(Task.Run(() => ServeAsync(connection, index)));
        }
    }

    private async Task ServeAsync(Socket connection, int index)
    {
        using (connection)
        {
            HostConnection record;
            try
            {
                record = await _serve(connection, index, _stop.Token);
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
            {
                record = new HostConnection(index, -1, 0, e.GetType().Name + ": " + e.Message);
            }
            _completed.Enqueue(record);
        }
    }
}
