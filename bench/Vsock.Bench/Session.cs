using Vsock.Testing;

namespace Vsock.Bench;

/// <summary>One daemon process and one synthetic guest (one VM) connected to it.</summary>
internal sealed class Session : IAsyncDisposable
{
    private uint _nextPort = 5000;

    private Session(DaemonProcess daemon, SyntheticGuest guest)
    {
        Daemon = daemon;
        Guest = guest;
    }

    public DaemonProcess Daemon { get; }
    public SyntheticGuest Guest { get; }

    /// <summary>A fresh port per measurement, so no listener or stream of an earlier one interferes.</summary>
    public uint NextPort() => _nextPort++;

    /// <summary>The synthetic guest plays QEMU 7.2 + Linux: 128-entry rings, 4 KiB RX buffers, EVENT_IDX, buf_alloc 256 KiB.</summary>
    public static async Task<Session> StartAsync(BenchOptions options, ulong daemonMask)
    {
        var daemon = await DaemonProcess.StartAsync(options.LauncherDll, daemonMask, options.DaemonArguments);
        try
        {
            var guest = SyntheticGuest.Connect(daemon.Socket, SyntheticGuestOptions.Default with
            {
                RecordReceived = false,
                MemorySize = 128L << 20,
                PollBeforeSleep = TimeSpan.FromMicroseconds(options.GuestPollMicroseconds),
                LazyTxReclaim = options.LazyTxReclaim,
            });
            return new Session(daemon, guest);
        }
        catch
        {
            await daemon.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Guest.DisposeAsync();
        await Daemon.DisposeAsync();
    }
}
