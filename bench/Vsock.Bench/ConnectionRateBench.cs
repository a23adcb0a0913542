using System.Net.Sockets;
using System.Text;
using Vsock.Testing.HostSide;

namespace Vsock.Bench;

/// <summary>Connections per second and how busy each side was meanwhile (see <see cref="CpuUse"/>).</summary>
internal readonly record struct RateResult(double PerSecond, CpuUse Cpu);

/// <summary>
/// Connection set-up and tear-down rate: <c>count</c> streams, at most <c>concurrency</c> at once, each
/// established (host: CONNECT → OK; guest: REQUEST → RESPONSE) and then closed by both ends. Both sides
/// are as cheap as the driver can make them, so that at 20,000/s the figure is the daemon's: the guest
/// side runs inside the synthetic guest's driver thread (<c>AcceptAndCloseAsync</c>,
/// <c>ConnectAndCloseAsync</c>: no task or thread hand-off per connection), the host side uses blocking
/// sockets on dedicated threads (no async socket engine). The CPU columns tell which side limits.
/// </summary>
internal static class ConnectionRateBench
{
    /// <summary>
    /// <paramref name="concurrency"/> host threads, each connecting, sending <c>CONNECT port</c>, reading
    /// <c>OK port</c> and closing, in a loop; the guest accepts and closes in its driver thread.
    /// </summary>
    public static async Task<RateResult> HostInitiatedAsync(Session session, int count, int concurrency)
    {
        var port = session.NextPort();
        var endpoint = new UnixDomainSocketEndPoint(session.Daemon.UdsPath);
        var request = Encoding.ASCII.GetBytes($"CONNECT {port}\n");
        var expected = Encoding.ASCII.GetBytes($"OK {port}\n");
        var guestSide = session.Guest.AcceptAndCloseAsync(port, count);
        var meter = CpuMeter.Start(session.Daemon);
        var next = -1;
        var hosts = Enumerable.Range(0, concurrency).Select(_ => HostSockets.RunThread("host-connect", () =>
        {
            var reply = new byte[64];
            while (Interlocked.Increment(ref next) < count)
                ConnectAndClose(endpoint, request, expected, reply);
        }, meter)).ToList();
        await AllOrFirstFailure(Timeout(count), [.. hosts, guestSide]);
        var cpu = meter.Stop();
        return new RateResult(count / cpu.Seconds, cpu);
    }

    /// <summary>
    /// The guest keeps <paramref name="concurrency"/> REQUESTs in flight from its driver thread and closes
    /// each stream on RESPONSE; one host thread accepts and closes in a loop.
    /// </summary>
    public static async Task<RateResult> GuestInitiatedAsync(Session session, int count, int concurrency)
    {
        var port = session.NextPort();
        // Disposed on the way out, which also ends a blocked Accept if the guest side failed.
        using var listener = HostVsock.Listen(session.Daemon.UdsPath, port, backlog: 1024);
        var meter = CpuMeter.Start(session.Daemon);
        var acceptor = HostSockets.RunThread("host-accept", () =>
        {
            for (var i = 0; i < count; i++)
                listener.Accept().Dispose();
        }, meter);
        var guestSide = session.Guest.ConnectAndCloseAsync(2, port, count, concurrency);
        await AllOrFirstFailure(Timeout(count), acceptor, guestSide);
        var cpu = meter.Stop();
        return new RateResult(count / cpu.Seconds, cpu);
    }

    /// <summary>Blocking: connect, CONNECT, the OK line (one or a few reads: nothing follows it), close.</summary>
    private static void ConnectAndClose(UnixDomainSocketEndPoint endpoint, byte[] request, byte[] expected, byte[] reply)
    {
        using var socket = HostSockets.NewUnix();
        socket.Connect(endpoint);
        socket.Send(request);
        var got = 0;
        while (got == 0 || reply[got - 1] != (byte)'\n')
        {
            var n = socket.Receive(reply, got, reply.Length - got, SocketFlags.None);
            if (n == 0 || (got += n) == reply.Length)
                break;
        }
        if (!reply.AsSpan(0, got).SequenceEqual(expected))
            throw new IOException($"CONNECT was answered with '{Encoding.ASCII.GetString(reply, 0, got).TrimEnd()}'");
    }

    private static TimeSpan Timeout(int count) => TimeSpan.FromSeconds(60 + count / 500.0);

    /// <summary>Waits for all; the first one that fails ends the wait (the others may be blocked on a peer that will not come).</summary>
    private static async Task AllOrFirstFailure(TimeSpan timeout, params Task[] tasks)
    {
        var pending = tasks.ToList();
        var deadline = DateTime.UtcNow + timeout;
        while (pending.Count > 0)
        {
            var left = deadline - DateTime.UtcNow;
            var done = await Task.WhenAny(pending).WaitAsync(left > TimeSpan.Zero ? left : TimeSpan.Zero);
            await done;
            pending.Remove(done);
        }
    }
}
