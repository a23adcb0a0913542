using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Vsock.E2E.Tests.Rig;

/// <summary>What a host-side listener saw on one accepted connection.</summary>
public sealed record HostConnection(int Index, long BytesRead, ulong Sha, string? Error)
{
    public override string ToString() =>
        $"#{Index} read={BytesRead} sha={TestPattern.Hex(Sha)}{(Error is null ? "" : " error=" + Error)}";
}

/// <summary>
/// A host application listening where the daemon sends guest-initiated connections for port P
/// (<c>&lt;uds_path&gt;_P</c>). Each accepted connection is served by <see cref="Behaviour"/> and recorded.
/// </summary>
public sealed class HostListener : IAsyncDisposable
{
    private readonly Socket listener;
    private readonly CancellationTokenSource stop = new();
    private readonly ConcurrentQueue<HostConnection> completed = new();
    private readonly ConcurrentBag<Task> handlers = [];
    private readonly Func<Socket, int, CancellationToken, Task<HostConnection>> behaviour;
    private readonly Task acceptLoop;
    private int accepted;

    private HostListener(string path, Func<Socket, int, CancellationToken, Task<HostConnection>> behaviour)
    {
        Path = path;
        this.behaviour = behaviour;
        listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(128);
        acceptLoop = AcceptLoopAsync();
    }

    public enum Behaviour
    {
        /// <summary>Read to EOF, reply <c>SINK bytes=N sha=H\n</c> (what the guest's send mode checks), close.</summary>
        SinkWithReply,

        /// <summary>Write back everything read; half-close at EOF.</summary>
        Echo,

        /// <summary>Wait a little (so the peer's close races the transfer), then read until EOF or error.</summary>
        SlowDrain,
    }

    public string Path { get; }

    public int Accepted => Volatile.Read(ref accepted);

    public IReadOnlyList<HostConnection> Completed => [.. completed.OrderBy(c => c.Index)];

    public static HostListener Start(string path, Behaviour behaviour) => Start(path, Serve(behaviour));

    /// <summary>A listener whose connections are served by <paramref name="serve"/> (socket, 1-based index, cancellation).</summary>
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
        while (completed.Count < count)
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException(
                    $"host listener {Path}: {completed.Count} of {count} connections finished after {timeout.TotalSeconds:0} s "
                    + $"({Accepted} accepted): {string.Join("; ", Completed)}");
            }
            await Task.Delay(20);
        }
        return Completed;
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        listener.Dispose();
        try
        {
            await acceptLoop;
            await Task.WhenAll(handlers).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or SocketException or ObjectDisposedException)
        {
            // Shutting down: unfinished handlers were cancelled.
        }
        stop.Dispose();
        File.Delete(Path);
    }

    private static async Task<HostConnection> SinkWithReplyAsync(Socket socket, int index, CancellationToken ct)
    {
        var (bytes, sha) = await HostVsock.ReadToEndAsync(socket, ct);
        var reply = string.Create(CultureInfo.InvariantCulture, $"SINK bytes={bytes} sha={TestPattern.Hex(sha)}\n");
        await HostVsock.SendAllAsync(socket, Encoding.ASCII.GetBytes(reply), ct);
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
            {
                break;
            }
            sha = TestPattern.Fnv1a(sha, buffer.AsSpan(0, n));
            total += n;
            await HostVsock.SendAllAsync(socket, buffer.AsMemory(0, n), ct);
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
                {
                    return new HostConnection(index, total, sha, null);
                }
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
        while (!stop.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await listener.AcceptAsync(stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            var index = Interlocked.Increment(ref accepted);
            handlers.Add(Task.Run(() => ServeAsync(connection, index)));
        }
    }

    private async Task ServeAsync(Socket connection, int index)
    {
        using (connection)
        {
            HostConnection record;
            try
            {
                record = await behaviour(connection, index, stop.Token);
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
            {
                record = new HostConnection(index, -1, 0, e.GetType().Name + ": " + e.Message);
            }
            completed.Enqueue(record);
        }
    }
}
