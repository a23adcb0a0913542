using System.Diagnostics;
using System.Security.Cryptography;
using Vsock.Testing;

namespace Vsock.Integration.Tests;

/// <summary>Small building blocks the scenarios share: a normal round trip each way, with hard time limits.</summary>
public static class Scenario
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private static int s_nextPort = 20000;

    public static uint NextPort() => (uint)Interlocked.Increment(ref s_nextPort);

    /// <summary>A host application connects to a guest listener and both exchange a short message; then both close.</summary>
    public static async Task HostToGuestRoundTripAsync(SyntheticGuest guest, string udsPath)
    {
        using var cts = new CancellationTokenSource(Timeout);
        var port = NextPort();
        using var listener = guest.Listen(port);
        using (var host = await HostVsock.ConnectAsync(udsPath, port, Timeout))
        {
            var stream = await listener.AcceptAsync(cts.Token);
            await host.SendAllAsync("ping"u8.ToArray(), cts.Token);
            Assert.Equal("ping"u8.ToArray(), await stream.ReadExactlyAsync(4, cts.Token));
            await stream.WriteAsync("pong"u8.ToArray(), cts.Token);
            Assert.Equal("pong"u8.ToArray(), await host.ReadExactlyAsync(4, cts.Token));
            await stream.CloseAsync();
        }
    }

    /// <summary>The guest connects to a host listener on <c>uds_path_P</c> and both exchange a short message.</summary>
    public static async Task GuestToHostRoundTripAsync(SyntheticGuest guest, string udsPath)
    {
        using var cts = new CancellationTokenSource(Timeout);
        var port = NextPort();
        using var hostListener = HostVsock.Listen(udsPath, port);
        var stream = await guest.ConnectAsync(2, port, Timeout, cts.Token);
        using var host = await hostListener.AcceptAsync(cts.Token);
        await stream.WriteAsync("hello"u8.ToArray(), cts.Token);
        Assert.Equal("hello"u8.ToArray(), await host.ReadExactlyAsync(5, cts.Token));
        await host.SendAllAsync("world"u8.ToArray(), cts.Token);
        Assert.Equal("world"u8.ToArray(), await stream.ReadExactlyAsync(5, cts.Token));
        await stream.CloseAsync();
    }

    /// <summary>Both directions, for "the VM still works".</summary>
    public static async Task VmServesAsync(SyntheticGuest guest, string udsPath)
    {
        await HostToGuestRoundTripAsync(guest, udsPath);
        await GuestToHostRoundTripAsync(guest, udsPath);
    }

    public static string Hash(byte[] data) => Convert.ToHexString(SHA256.HashData(data));

    public static void AssertClean(SyntheticGuest guest)
    {
        Assert.Null(guest.DriverFault);
        Assert.Empty(guest.Violations);
    }

    public static async Task WaitUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        while (!condition())
            await Task.Delay(10, cancellationToken);
    }

    /// <summary>Waits until <paramref name="progress"/> stops changing for <paramref name="quiet"/>; returns its value then.</summary>
    public static async Task<long> WaitForStallAsync(Func<long> progress, TimeSpan quiet, CancellationToken cancellationToken)
    {
        var last = progress();
        var since = Stopwatch.StartNew();
        while (since.Elapsed < quiet)
        {
            await Task.Delay(20, cancellationToken);
            var now = progress();
            if (now != last)
            {
                last = now;
                since.Restart();
            }
        }
        return last;
    }
}
