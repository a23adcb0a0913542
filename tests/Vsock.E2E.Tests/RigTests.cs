using System.Diagnostics;
using System.Text;
using Vsock.E2E.Tests.Rig;

namespace Vsock.E2E.Tests;

/// <summary>The rig's own pieces: pattern/checksum, marker parsing, the image cache, QEMU lifetime.</summary>
public sealed class RigTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("", 0xcbf29ce484222325UL)]
    [InlineData("a", 0xaf63dc4c8601ec8cUL)]
    [InlineData("foobar", 0x85944171f73967e8UL)]
    public void Fnv1a_matches_the_published_test_vectors(string input, ulong expected)
    {
        Assert.Equal(expected, TestPattern.Fnv1a(TestPattern.FnvOffset, Encoding.ASCII.GetBytes(input)));
    }

    [Fact]
    public void Pattern_is_position_addressable()
    {
        var whole = new byte[1000];
        TestPattern.Fill(whole, 0, 5);
        var pieces = new byte[1000];
        foreach (var (start, length) in new[] { (0, 3), (3, 13), (16, 1), (17, 983) })
        {
            TestPattern.Fill(pieces.AsSpan(start, length), start, 5);
        }
        Assert.Equal(whole, pieces);
        var otherSeed = new byte[1000];
        TestPattern.Fill(otherSeed, 0, 6);
        Assert.NotEqual(whole, otherSeed);
    }

    [Fact]
    public void Pattern_checksum_matches_the_guest_program()
    {
        // Printed by `vsock-test pattern 1048576` and `vsock-test pattern 16 7` (the C twin, run on the host).
        Assert.Equal("edae81c68f5caba7", TestPattern.Hex(TestPattern.Checksum(1048576, 1)));
        Assert.Equal("a3e158acb40ebce3", TestPattern.Hex(TestPattern.Checksum(16, 7)));
    }

    [Fact]
    public void Marker_parser_reads_fields_and_the_reply_tail()
    {
        var m = GuestMarker.Parse("VSOCKTEST RESULT send cid=2 port=5000 sent=10 ok=1 reply=SINK bytes=10 sha=00ff");
        Assert.Equal("RESULT", m.Kind);
        Assert.Equal("send", m.Mode);
        Assert.Equal(10, m.GetLong("sent"));
        Assert.Equal("SINK bytes=10 sha=00ff", m.Get("reply"));
        var ready = GuestMarker.Parse("VSOCKTEST READY 1234");
        Assert.True(ready.Is("READY"));
        Assert.Null(ready.Mode);
        Assert.Equal(["1234"], ready.Words);
        Assert.Null(GuestMarker.TryParse("[    3.5] reboot: Power down"));
    }

    [Fact]
    public void Guest_options_reject_words_the_kernel_command_line_cannot_carry()
    {
        var image = new GuestImagePaths("/vmlinux", "/initrd", "test");
        Assert.Throws<ArgumentException>(() => new QemuGuestOptions { Image = image, Run = "connect 1 5000 10" }.BuildArguments());
        Assert.Throws<ArgumentException>(() => new QemuGuestOptions { Image = image, VhostUserSocket = "/tmp/a,b" }.BuildArguments());
        var args = new QemuGuestOptions { Image = image, Run = "cid", VhostUserSocket = "/tmp/v.sock" }.BuildArguments();
        Assert.Contains("vhost-user-vsock-pci,chardev=char0", args);
        Assert.Contains(args, a => a.EndsWith(" VT_RUN=cid", StringComparison.Ordinal));
    }

    [Fact]
    public void Host_run_options_share_the_host_root_read_only_and_encode_the_command()
    {
        var image = new GuestImagePaths("/vmlinux", "/initrd", "test");
        var args = new QemuGuestOptions
        {
            Image = image,
            HostRoot = true,
            HostCommand = ["/usr/bin/dotnet", "/work/x/Vsock.InGuest.dll", "vsock-selftest"],
            HostCommandFile = "/tmp/vse2e-a/probe.sh",
            HostWorkingDirectory = "/work/x",
        }.BuildArguments();
        Assert.Contains("local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap", args);
        Assert.Contains("2048M", args);
        var append = args[args.ToList().IndexOf("-append") + 1];
        Assert.Contains(" VT_HOSTRUN=1", append, StringComparison.Ordinal);
        Assert.Contains(" VT_HOSTCMD=/usr/bin/dotnet,/work/x/Vsock.InGuest.dll,vsock-selftest", append, StringComparison.Ordinal);
        Assert.Contains(" VT_HOSTCMD_FILE=/tmp/vse2e-a/probe.sh", append, StringComparison.Ordinal);
        Assert.Contains(" VT_HOSTCWD=/work/x", append, StringComparison.Ordinal);

        var plain = new QemuGuestOptions { Image = image }.BuildArguments();
        Assert.DoesNotContain("-virtfs", plain);
        Assert.Contains("256M", plain);
        Assert.Contains("1024M", new QemuGuestOptions { Image = image, HostRoot = true, MemoryMiB = 1024 }.BuildArguments());
    }

    [Fact]
    public void Host_run_options_reject_what_the_guest_cannot_run()
    {
        var image = new GuestImagePaths("/vmlinux", "/initrd", "test");
        var hostRun = new QemuGuestOptions { Image = image, HostRoot = true };
        Assert.Throws<ArgumentException>(() => new QemuGuestOptions { Image = image, HostCommand = ["/bin/true"] }.BuildArguments());
        Assert.Throws<ArgumentException>(() => new QemuGuestOptions { Image = image, HostWorkingDirectory = "/work" }.BuildArguments());
        Assert.Throws<ArgumentException>(() => (hostRun with { HostCommand = [] }).BuildArguments());
        Assert.Throws<ArgumentException>(() => (hostRun with { HostCommand = ["/bin/echo", "a,b"] }).BuildArguments());
        Assert.Throws<ArgumentException>(() => (hostRun with { HostCommand = ["/bin/echo", "a b"] }).BuildArguments());
        Assert.Throws<ArgumentException>(() => (hostRun with { HostCommand = ["/bin/echo", ""] }).BuildArguments());
        Assert.Throws<ArgumentException>(() => (hostRun with { HostWorkingDirectory = "relative" }).BuildArguments());
        Assert.Throws<ArgumentException>(() => (hostRun with { HostCommandFile = "/tmp/a b.sh" }).BuildArguments());
    }

    [Theory]
    [InlineData("/tmp/vse2e-a/cmd.sh", "/run/host-tmp/vse2e-a/cmd.sh")]
    [InlineData("/tmp", "/run/host-tmp")]
    [InlineData("/work/repo/tests/x.dll", "/work/repo/tests/x.dll")]
    [InlineData("/usr/share/dotnet/dotnet", "/usr/share/dotnet/dotnet")]
    [InlineData("/tmpx/a", "/tmpx/a")]
    [InlineData("/work/a/../b", "/work/b")]
    [InlineData("/root/.dotnet/dotnet", "/run/host-root/.dotnet/dotnet")]
    [InlineData("/var/tmp/x", "/run/host-var-tmp/x")]
    public void Host_paths_map_to_where_a_host_run_guest_sees_them(string hostPath, string guestPath)
    {
        Assert.Equal(guestPath, HostRoot.GuestPath(hostPath));
    }

    [Theory]
    [InlineData("/run/user/0/x")]
    [InlineData("/dev/shm/x")]
    public void Host_paths_the_guest_covers_with_its_own_mounts_are_refused(string hostPath)
    {
        Assert.Throws<ArgumentException>(() => HostRoot.GuestPath(hostPath));
    }

    [Fact]
    public async Task Guest_image_build_is_cached()
    {
        var image = await GuestImage.GetAsync();
        var before = File.GetLastWriteTimeUtc(image.Initramfs);
        var psi = new ProcessStartInfo("bash") { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add(RepoPaths.BuildGuestScript);
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        output.WriteLine($"cached build-guest.sh: {clock.Elapsed.TotalSeconds:0.00} s");
        Assert.True(process.ExitCode == 0, await stderr);
        Assert.Contains("up to date", await stderr, StringComparison.Ordinal);
        Assert.Contains($"INITRAMFS={image.Initramfs}", stdout, StringComparison.Ordinal);
        Assert.Equal(before, File.GetLastWriteTimeUtc(image.Initramfs));
    }

    [Fact]
    public async Task Dispose_ends_a_guest_that_never_powers_off_and_waits_report_the_console()
    {
        await using var scenario = await E2EScenario.CreateAsync();
        var guest = scenario.StartGuest("forever", vhostSocket: null, "listen-echo,5000,0");
        await guest.WaitForListenerAsync(5000, E2ETimeouts.Boot);
        output.WriteLine($"boot to READY: {guest.Elapsed.TotalSeconds:0.00} s");

        var timeout = await Assert.ThrowsAsync<GuestConsoleException>(
            () => guest.WaitForMarkerAsync("DONE", null, TimeSpan.FromMilliseconds(300)));
        Assert.Contains("VSOCKTEST READY 5000", timeout.Message, StringComparison.Ordinal);

        var clock = Stopwatch.StartNew();
        await guest.DisposeAsync();
        Assert.True(guest.HasExited);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"dispose took {clock.Elapsed}");
        Assert.Throws<ArgumentException>(() => Process.GetProcessById(guest.Pid));
    }

    [Fact]
    public async Task Console_steps_run_in_a_booted_guest_and_report_their_status()
    {
        await using var scenario = await E2EScenario.CreateAsync();
        await scenario.RunAsync(output, async () =>
        {
            var guest = scenario.StartGuest("console", vhostSocket: null, "bg:listen-echo,6000,2;wait-ready,6000", console: true);
            Assert.Equal(0, await guest.RunStepAsync("connect,1,6000,65536,3", E2ETimeouts.Boot));
            Assert.Equal(0, await guest.RunStepAsync("connect 1 6000 65536 4", E2ETimeouts.Step));
            Assert.NotEqual(0, await guest.RunStepAsync("connect,1,6999,10", E2ETimeouts.Step));
            var seeds = (await guest.WaitForMarkersAsync("RESULT", "connect", 2, E2ETimeouts.Step)).Select(m => m.Get("seed") + ":" + m.Get("ok"));
            Assert.Equal(["3:1", "4:1"], seeds);
            // A FAIL reported before a wait began does not end later waits.
            await guest.WaitForMarkerAsync("RESULT", "listen-echo", E2ETimeouts.Step);
        });
    }
}
