namespace Vsock.InGuest;

/// <summary>
/// Dispatches <c>Vsock.InGuest &lt;command&gt; [--option value]...</c> to one of <see cref="Commands"/>.
/// Exit codes: 0 the command's checks passed, 1 a check failed (a <c>VSOCKTEST FAIL</c> line says which),
/// 2 usage error, 3 a guest-only command was started outside a test guest.
/// </summary>
internal static class InGuestProgram
{
    public const int Passed = 0;
    public const int Failed = 1;
    public const int UsageError = 2;
    public const int NotInGuest = 3;

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        if (args.Count == 0 || args[0] is "-h" or "--help" or "help")
        {
            PrintUsage();
            return args.Count == 0 ? UsageError : Passed;
        }
        var command = Commands.Find(args[0]);
        if (command is null)
        {
            Console.Error.WriteLine($"unknown command '{args[0]}'");
            PrintUsage();
            return UsageError;
        }
        if (command.NeedsGuest && !GuestEnvironment.IsTestGuest())
        {
            // The build host's own vsock belongs to its hypervisor: never open AF_VSOCK there.
            Console.Error.WriteLine(
                $"refusing to run '{command.Name}': it opens AF_VSOCK sockets and may run only inside a QEMU test guest "
                + $"(kernel command line with {GuestEnvironment.GuestMarkerWord}; see tests/e2e/README.md)");
            return NotInGuest;
        }
        try
        {
            return await command.Run(CommandArguments.Parse(args.Skip(1).ToList()));
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"{command.Name}: {e.Message}");
            Console.Error.WriteLine($"usage: Vsock.InGuest {command.Name} {command.Usage}");
            return UsageError;
        }
        catch (Exception e)
        {
            Markers.Fail(command.Name, $"unexpected {e.GetType().Name}: {e.Message}");
            Console.Error.WriteLine(e);
            return Failed;
        }
    }

    private static void PrintUsage()
    {
        Console.Error.WriteLine("usage: Vsock.InGuest <command> [--option value]...");
        foreach (var command in Commands.All)
        {
            Console.Error.WriteLine($"  {command.Name} {command.Usage}");
            Console.Error.WriteLine($"      {command.Description}");
        }
    }
}
