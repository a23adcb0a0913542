using System.Diagnostics;
using Vsock.E2E.Tests.Rig;

namespace Vsock.E2E.Tests;

/// <summary>
/// tests/Vsock.InGuest on the build host, for what is safe there: usage, the guest check (<c>where</c>),
/// and the pattern twin. Its AF_VSOCK commands are never started here.
/// </summary>
public sealed class InGuestProgramHostTests
{
    [Fact]
    public async Task Where_reports_that_the_build_host_is_not_a_test_guest()
    {
        var (code, stdout, _) = await RunAsync("where");
        Assert.Equal(0, code);
        var where = GuestMarker.Parse(stdout.Trim());
        Assert.True(where.Is("RESULT", "where"), stdout);
        Assert.Equal("0", where.Get("in_guest"));
    }

    [Fact]
    public async Task Pattern_matches_the_rig_implementation()
    {
        var (code, stdout, _) = await RunAsync("pattern", "--bytes", "1000", "--seed", "9");
        Assert.Equal(0, code);
        var pattern = GuestMarker.Parse(stdout.Trim());
        Assert.Equal(TestPattern.Hex(TestPattern.Checksum(1000, 9)), pattern.Get("sha"));
    }

    [Theory]
    [InlineData(new string[0], "usage:")]
    [InlineData(new[] { "no-such-command" }, "unknown command")]
    [InlineData(new[] { "pattern", "--bytes" }, "--bytes needs a value")]
    [InlineData(new[] { "pattern", "--bites", "5" }, "unknown option(s) --bites")]
    [InlineData(new[] { "pattern", "--bytes", "-5" }, "--bytes must be a number")]
    public async Task Bad_command_lines_exit_2_with_a_reason(string[] args, string expected)
    {
        var (code, _, stderr) = await RunAsync(args);
        Assert.Equal(2, code);
        Assert.Contains(expected, stderr, StringComparison.Ordinal);
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunAsync(params string[] args)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        var psi = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(InGuestProgram.DllPath);
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(E2ETimeouts.Step);
        return (process.ExitCode, await stdout, await stderr);
    }
}
