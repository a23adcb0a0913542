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

    /// <summary>
    /// The vhost-user chardev's <c>reconnect=N</c> (seconds): QEMU connects in the background and reconnects after the
    /// backend goes away. Null: no reconnect (QEMU connects once, at start).
    /// </summary>
    public int? ChardevReconnectSeconds { get; init; }

    /// <summary>Guest RAM; null means 256 MiB, or 2048 MiB with <see cref="HostRoot"/> (.NET and its tmpfs need room).</summary>
    public int? MemoryMiB { get; init; }

    /// <summary>
    /// Share the host's root read-only over virtio-9p (VT_HOSTRUN=1): the guest mounts it, prepares it for
    /// chroot and can run the host's own programs, its .NET included, on the guest kernel (and its AF_VSOCK).
    /// Host paths as the guest sees them: <see cref="HostRoot.GuestPath"/>.
    /// </summary>
    public bool HostRoot { get; init; }

    /// <summary>
    /// A program and its arguments to run inside the host root after <see cref="Run"/> (VT_HOSTCMD); it ends
    /// with <c>VSOCKTEST HOSTRUN rc=N</c>. Words cannot contain spaces, ',' or quotes. Needs <see cref="HostRoot"/>.
    /// </summary>
    public IReadOnlyList<string>? HostCommand { get; init; }

    /// <summary>
    /// A shell script on the host (host path; /tmp is fine: the guest copies it before hiding /tmp) that the
    /// host's /bin/sh runs inside the host root after <see cref="HostCommand"/> (VT_HOSTCMD_FILE). Needs <see cref="HostRoot"/>.
    /// </summary>
    public string? HostCommandFile { get; init; }

    /// <summary>Working directory of host commands (VT_HOSTCWD, a path inside the host root); default /.</summary>
    public string? HostWorkingDirectory { get; init; }

    public int EffectiveMemoryMiB => MemoryMiB ?? (HostRoot ? 2048 : 256);

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
        ValidateHostRun();
        var append = "console=ttyS0 panic=-1 quiet loglevel=3 mitigations=off i8042.noaux i8042.nokbd i8042.nopnp"
            + $" VT_TIMEOUT={ProgramTimeoutSeconds}"
            + (Console ? " VT_CONSOLE=1" : "")
            + (HostRoot ? " VT_HOSTRUN=1" : "")
            + (HostWorkingDirectory is not null ? $" VT_HOSTCWD={HostWorkingDirectory}" : "")
            + (HostCommand is not null ? $" VT_HOSTCMD={string.Join(',', HostCommand)}" : "")
            + (HostCommandFile is not null ? $" VT_HOSTCMD_FILE={HostCommandFile}" : "")
            + (Run.Length > 0 ? $" VT_RUN={Run}" : "");
        // x86 kernels keep 2048 bytes of command line; a longer one would be cut silently.
        if (append.Length >= 2048)
        {
            throw new ArgumentException("kernel command line too long; use Console steps instead of a long Run");
        }
        var mem = $"{EffectiveMemoryMiB}M";
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
            var reconnect = ChardevReconnectSeconds is { } seconds ? $",reconnect={seconds}" : "";
            args.AddRange(["-chardev", $"socket,id=char0,path={VhostUserSocket}{reconnect}", "-device", "vhost-user-vsock-pci,chardev=char0"]);
        }
        if (HostRoot)
        {
            // Read-only, so nothing in the guest can change the host; multidevs=remap keeps inode numbers of
            // different host filesystems apart. The guest mounts it with cache=loose (init.sh).
            args.AddRange(["-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"]);
        }
        return args;
    }

    private void ValidateHostRun()
    {
        if (!HostRoot && (HostCommand is not null || HostCommandFile is not null || HostWorkingDirectory is not null))
        {
            throw new ArgumentException("HostCommand, HostCommandFile and HostWorkingDirectory need HostRoot = true");
        }
        if (HostCommand is { Count: 0 })
        {
            throw new ArgumentException("HostCommand is empty");
        }
        foreach (var word in HostCommand ?? [])
        {
            if (word.Length == 0 || word.IndexOfAny([' ', ',', '"', '\'', '\t', '\n']) >= 0)
            {
                throw new ArgumentException($"a HostCommand word cannot be empty or contain spaces, ',' or quotes: '{word}'");
            }
        }
        foreach (var path in new[] { HostCommandFile, HostWorkingDirectory })
        {
            if (path is not null && (!path.StartsWith('/') || path.IndexOfAny([' ', '"', '\'', '\t', '\n']) >= 0))
            {
                throw new ArgumentException($"host paths must be absolute, without spaces or quotes: '{path}'");
            }
        }
    }
}
