using System.Runtime.InteropServices;

namespace Vsock.Device.Interop;

/// <summary>
/// The managed side of <c>libvsockguard.so</c> (src/Vsock.Device/native/vsockguard.c): a SIGBUS handler
/// installed in front of the .NET runtime's that repairs faults inside registered guest-memory ranges.
///
/// Why: guest RAM is a shared mapping of a file the VMM owns. A VMM that shrinks the file after we mapped
/// it makes our next access past the new end raise SIGBUS, which the runtime reports as a fatal
/// AccessViolationException: the whole daemon, every VM, goes down. With the guard, the faulting range is
/// replaced by private zero pages, its poison counter is bumped and the access completes; the device
/// reads <see cref="MappedMemory.IsPoisoned"/> after each ring turn and ends that VMM's session.
///
/// How it chains (dotnet/runtime src/coreclr/pal/src/exception/signal.cpp): the runtime installs its
/// SIGBUS handler at start-up with sigaction, saving the previous action, and never re-installs it. We
/// install ours later (on first use), saving the runtime's action; a SIGBUS outside our ranges is passed
/// to it with the same (signal, siginfo, context), so the runtime behaves as before. Our handler takes
/// the runtime's flags (SA_RESTART, no SA_ONSTACK) so the runtime's handler runs where it expects to.
/// Cost: nothing on the data path (no check per access); one table slot per mapping.
/// </summary>
public static unsafe partial class SigbusGuard
{
    private const string Library = "libvsockguard";

    private static readonly Lazy<string?> s_unavailable = new(TryInstall, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>True when the handler is installed (the library loaded and sigaction succeeded).</summary>
    public static bool IsAvailable => s_unavailable.Value is null;

    /// <summary>Why the guard is not available; null when it is.</summary>
    public static string? UnavailableReason => s_unavailable.Value;

    /// <summary>SIGBUS faults repaired in guarded ranges since the process started.</summary>
    public static long RepairedTotal => IsAvailable ? RepairedTotalNative() : 0;

    /// <summary>
    /// Guards [<paramref name="start"/>, +<paramref name="length"/>). False when the guard is not available,
    /// our handler is no longer the process's SIGBUS handler, or the table is full.
    /// <paramref name="poisonCounter"/> points at the range's fault counter (valid until <see cref="Unregister"/>).
    /// </summary>
    internal static bool TryRegister(nint start, nuint length, out int slot, out int* poisonCounter)
    {
        slot = -1;
        poisonCounter = null;
        if (!IsAvailable || IsActiveNative() == 0)
            return false;
        var s = RegisterNative(start, length);
        if (s < 0)
            return false;
        slot = s;
        poisonCounter = PoisonCounterNative(s);
        return true;
    }

    /// <summary>Stops guarding <paramref name="slot"/>. Call before the range is unmapped.</summary>
    internal static void Unregister(int slot) => UnregisterNative(slot);

    private static string? TryInstall()
    {
        try
        {
            var result = InstallNative();
            return result == 0 ? null : $"installing the SIGBUS handler failed: {Marshal.GetPInvokeErrorMessage(-result)}";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return $"{Library}.so could not be loaded: {e.Message}";
        }
    }

    [LibraryImport(Library, EntryPoint = "vsockguard_install")]
    private static partial int InstallNative();

    [LibraryImport(Library, EntryPoint = "vsockguard_is_active")]
    private static partial int IsActiveNative();

    [LibraryImport(Library, EntryPoint = "vsockguard_register")]
    private static partial int RegisterNative(nint start, nuint length);

    [LibraryImport(Library, EntryPoint = "vsockguard_unregister")]
    private static partial void UnregisterNative(int slot);

    [LibraryImport(Library, EntryPoint = "vsockguard_poison_counter")]
    private static partial int* PoisonCounterNative(int slot);

    [LibraryImport(Library, EntryPoint = "vsockguard_repaired_total")]
    private static partial long RepairedTotalNative();
}
