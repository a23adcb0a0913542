namespace Vsock.E2E.Tests.Rig;

/// <summary>How to boot one test guest. See tests/e2e/guest/init.sh for the VT_* variables.</summary>
public sealed record QemuGuestOptions
{
    public required GuestImagePaths Image { get; init; }

    /// <summary>Name used in diagnostics ("cid3", "vm-a", ...).</summary>
    public string Name { get; init; } = "guest";

    /// <summary>
    /// The guest scenario (VT_RUN): steps separated by ';', words of a step by ','; e.g.
    /// <c>bg:listen-echo,1234,0;wait-ready,1234;connect,1,1234,1048576</c>. No spaces or quotes.
    /// </summary>
    public string Run { get; init; } = "";

    /// <summary>After <see cref="Run"/>, read further steps from the serial console (VT_CONSOLE=1).</summary>
    public bool Console { get; init; }

    /// <summary>
    /// The vhost-user socket of the daemon. Null boots without a vhost-user-vsock-pci device
    /// (the guest still has vsock_loopback, CID 1).
    /// </summary>
    public string? VhostUserSocket { get; init; }

    public int MemoryMiB { get; init; } = 256;

    /// <summary>Hard limit on the guest's life; QEMU is killed when it expires.</summary>
    public TimeSpan Lifetime { get; init; } = TimeSpan.FromMinutes(3);

    /// <summary>Seconds each guest test process may run (VT_TIMEOUT); 0 = no limit.</summary>
    public int ProgramTimeoutSeconds { get; init; } = 120;

    /// <summary>Waiters fail as soon as a "VSOCKTEST FAIL" line appears instead of running into their timeout.</summary>
    public bool FailFast { get; init; } = true;

    /// <summary>Appended to every failure message (e.g. the daemon log).</summary>
    public Func<string>? ExtraDiagnostics { get; init; }

    /// <summary>The QEMU command line (without the program name).</summary>
    public IReadOnlyList<string> BuildArguments()
    {
        if (Run.IndexOfAny([' ', '"', '\'', '\t', '\n']) >= 0)
        {
            throw new ArgumentException($"VT_RUN must not contain spaces or quotes (use ',' and ';'): '{Run}'");
        }
        if (VhostUserSocket is not null && VhostUserSocket.Contains(',', StringComparison.Ordinal))
        {
            throw new ArgumentException($"QEMU option values cannot contain ',': '{VhostUserSocket}'");
        }
        var append = "console=ttyS0 panic=-1 quiet loglevel=3 mitigations=off i8042.noaux i8042.nokbd i8042.nopnp"
            + $" VT_TIMEOUT={ProgramTimeoutSeconds}"
            + (Console ? " VT_CONSOLE=1" : "")
            + (Run.Length > 0 ? $" VT_RUN={Run}" : "");
        // x86 kernels keep 2048 bytes of command line; a longer one would be cut silently.
        if (append.Length >= 2048)
        {
            throw new ArgumentException("kernel command line too long; use Console steps instead of a long Run");
        }
        var mem = $"{MemoryMiB}M";
        List<string> args =
        [
            "-machine", "q35,accel=tcg,memory-backend=mem0",
            "-cpu", "qemu64",
            "-smp", "1",
            "-m", mem,
            // vhost-user needs guest RAM the daemon can map: a shared memfd of exactly -m bytes.
            "-object", $"memory-backend-memfd,id=mem0,size={mem},share=on",
            "-nodefaults",
            "-display", "none",
            "-serial", "stdio",
            "-no-reboot",
            "-kernel", Image.Vmlinux,
            "-initrd", Image.Initramfs,
            "-append", append,
        ];
        if (VhostUserSocket is not null)
        {
            args.AddRange(["-chardev", $"socket,id=char0,path={VhostUserSocket}", "-device", "vhost-user-vsock-pci,chardev=char0"]);
        }
        return args;
    }
}
