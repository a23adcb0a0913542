namespace Vsock.InGuest;

/// <summary>
/// One subcommand. <paramref name="NeedsGuest"/> commands touch AF_VSOCK and run only inside a test guest.
/// <paramref name="Run"/> returns the exit code and reports through <see cref="Markers"/>.
/// </summary>
internal sealed record InGuestCommand(
    string Name, string Usage, string Description, bool NeedsGuest, Func<CommandArguments, Task<int>> Run);

/// <summary>Every subcommand; a new scenario is one more entry here and one file with its Run.</summary>
internal static class Commands
{
    public static readonly IReadOnlyList<InGuestCommand> All =
    [
        new("where", "", "reports whether this is a test guest, the kernel and the runtime (no sockets)", NeedsGuest: false, WhereCommand.RunAsync),
        new("pattern", "[--bytes N] [--seed S]", "the checksum of the test pattern (the twin of vsock-test's pattern mode) and its cost", NeedsGuest: false, PatternCommand.RunAsync),
        new("vsock-selftest", "[--listen-cid C] [--port P] [--bytes N] [--refused-port Q] [--timeout-ms T]",
            "Vsock.Device.Interop.Vsock against vsock_loopback (CID 1): listen, connect, accept, transfer both ways, refusal",
            NeedsGuest: true, VsockSelfTest.RunAsync),
        new("forward-selftest", "[--guest-cid C] [--port P] [--listen-port L] [--refused-port R] [--bytes N] [--seq-port P] [--seq-listen-port L] [--seq-messages N] [--timeout-ms T]",
            "the daemon's AF_VSOCK backend (forward-cid=1, forward-listen, forward-listen-seqpacket) in process, a synthetic guest on its socket, peers on vsock_loopback",
            NeedsGuest: true, ForwardSelfTest.RunAsync),
    ];

    public static InGuestCommand? Find(string name) => All.FirstOrDefault(c => c.Name == name);
}
