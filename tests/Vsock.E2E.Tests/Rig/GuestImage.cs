using System.Diagnostics;

namespace Vsock.E2E.Tests.Rig;

/// <summary>The guest kernel and initramfs built by tests/e2e/guest/build-guest.sh.</summary>
public sealed record GuestImagePaths(string Vmlinux, string Initramfs, string KernelRelease);

/// <summary>
/// Runs build-guest.sh once per test run (it is cached on disk, so a warm run costs well under a
/// second) and hands every test the same paths. A failed build fails every test that needs a guest
/// with the script's own output.
/// </summary>
public static class GuestImage
{
    // A cold build downloads a ~70 MB kernel package and may apt-get install QEMU (~2 min measured).
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(10);

    private static readonly Lazy<Task<GuestImagePaths>> Build = new(BuildAsync);

    public static Task<GuestImagePaths> GetAsync() => Build.Value;

    private static async Task<GuestImagePaths> BuildAsync()
    {
        var script = RepoPaths.BuildGuestScript;
        var psi = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(script);
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start bash {script}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(BuildTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            await process.WaitForExitAsync();
            throw new InvalidOperationException(
                $"{script} did not finish within {BuildTimeout}:\n{await stderr}\n{await stdout}");
        }
        var output = await stdout;
        var log = await stderr;
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{script} failed with exit code {process.ExitCode}:\n{log}\n{output}");
        }
        var values = output
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split('=', 2))
            .Where(kv => kv.Length == 2)
            .ToDictionary(kv => kv[0], kv => kv[1], StringComparer.Ordinal);
        if (!values.TryGetValue("VMLINUX", out var vmlinux) || !values.TryGetValue("INITRAMFS", out var initramfs)
            || !values.TryGetValue("KERNEL", out var release) || !File.Exists(vmlinux) || !File.Exists(initramfs))
        {
            throw new InvalidOperationException($"{script} printed no usable VMLINUX=/INITRAMFS=/KERNEL= lines:\n{output}\n{log}");
        }
        return new GuestImagePaths(vmlinux, initramfs, release);
    }
}
