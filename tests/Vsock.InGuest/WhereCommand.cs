using System.Runtime.InteropServices;

namespace Vsock.InGuest;

/// <summary><c>where</c>: what the program sees around it. Opens no socket, so it may run anywhere.</summary>
internal static class WhereCommand
{
    public static Task<int> RunAsync(CommandArguments args)
    {
        args.EnsureAllUsed();
        Markers.Result("where", ok: true, new MarkerFields()
            .Add("in_guest", GuestEnvironment.IsTestGuest())
            .Add("kernel", GuestEnvironment.KernelRelease)
            .Add("cpus", Environment.ProcessorCount)
            .Add("runtime", RuntimeInformation.FrameworkDescription)
            .Add("uptime", GuestEnvironment.Uptime)
            .Add("startup_ms", (long)(DateTime.Now - System.Diagnostics.Process.GetCurrentProcess().StartTime).TotalMilliseconds));
        return Task.FromResult(InGuestProgram.Passed);
    }
}
