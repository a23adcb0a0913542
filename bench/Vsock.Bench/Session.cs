using Vsock.Testing;

namespace Vsock.Bench;

/// <summary>One VM of a session: the synthetic guest plugged into the daemon's VM, and that VM's host-side unix socket.</summary>
internal sealed record GuestVm(uint Cid, SyntheticGuest Guest, string UdsPath);

/// <summary>One daemon process and one synthetic guest per VM of it (one VM unless the phase asks for more).</summary>
internal sealed class Session : IAsyncDisposable
{
    private uint _nextPort = 5000;

    private Session(DaemonProcess daemon, IReadOnlyList<GuestVm> vms)
    {
        Daemon = daemon;
        Vms = vms;
    }

    public DaemonProcess Daemon { get; }
    public IReadOnlyList<GuestVm> Vms { get; }

    /// <summary>The first VM's guest (CID 3): the only one unless the session has several.</summary>
    public SyntheticGuest Guest => Vms[0].Guest;

    /// <summary>A fresh port per measurement, so no listener or stream of an earlier one interferes.</summary>
    public uint NextPort() => _nextPort++;

    /// <summary>The synthetic guests play QEMU 7.2 + Linux: 128-entry rings, 4 KiB RX buffers, EVENT_IDX, buf_alloc 256 KiB (unless --guest-buf-alloc).</summary>
    public static async Task<Session> StartAsync(BenchOptions options, ulong daemonMask, int vmCount = 1)
    {
        var daemon = await DaemonProcess.StartAsync(options.LauncherDll, daemonMask, options.Daemon, vmCount);
        var vms = new List<GuestVm>();
        try
        {
            foreach (var vm in daemon.Vms)
            {
                var guest = SyntheticGuest.Connect(vm.Socket, SyntheticGuestOptions.Default with
                {
                    RecordReceived = false,
                    MemorySize = 128L << 20,
                    PollBeforeSleep = TimeSpan.FromMicroseconds(options.GuestPollMicroseconds),
                    LazyTxReclaim = options.LazyTxReclaim,
                    BufAlloc = options.GuestBufAlloc,
                });
                vms.Add(new GuestVm(vm.Cid, guest, vm.UdsPath));
            }
            return new Session(daemon, vms);
        }
        catch
        {
            foreach (var vm in vms)
                await vm.Guest.DisposeAsync();
            await daemon.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var vm in Vms)
            await vm.Guest.DisposeAsync();
        await Daemon.DisposeAsync();
    }
}
