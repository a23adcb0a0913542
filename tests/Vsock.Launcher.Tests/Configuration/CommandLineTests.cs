using Vsock.Launcher.Configuration;

namespace Vsock.Launcher.Tests.Configuration;

public sealed class CommandLineTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("-h")]
    [InlineData("--help")]
    public void Help_lists_every_option_and_starts_nothing(string flag)
    {
        LaunchOptions options = Cli.Parse(flag);

        Assert.Empty(options.Vms);
        Assert.NotNull(options.InformationText);
        foreach (string option in (string[])["--guest-cid", "--socket", "--uds-path", "--forward-cid", "--forward-listen", "--forward-listen-seqpacket",
                     "--tx-buffer-size", "--queue-size", "--groups", "--vm", "--config", "--log-level", "--help", "-V, --version"])
        {
            Assert.Contains(option, options.InformationText);
        }
    }

    [Fact]
    public void Help_wins_over_other_arguments()
    {
        Assert.NotNull(Cli.Parse("--socket", "/tmp/s", "--help").InformationText);
    }

    [Theory]
    [InlineData("-V")]
    [InlineData("--version")]
    public void Version_prints_name_and_version(string flag)
    {
        LaunchOptions options = Cli.Parse(flag);

        Assert.Empty(options.Vms);
        Assert.Equal($"vhost-device-vsock {CommandLine.Version}", options.InformationText?.TrimEnd());
        Assert.Matches(@"^vhost-device-vsock \d+\.\d+", options.InformationText);
    }

    [Fact]
    public void Version_with_other_arguments_is_refused()
    {
        Assert.Contains("--version option cannot be combined with other arguments", Cli.Error("--version", "--socket", "/tmp/s"));
    }

    [Fact]
    public void No_arguments_is_refused()
    {
        Assert.Equal(
            "no device configured: give --socket with --uds-path or --forward-cid, or one --vm per device, or --config FILE (see --help)",
            Cli.Error());
    }

    [Fact]
    public void Only_a_log_level_is_no_device()
    {
        Assert.StartsWith("no device configured", Cli.Error("--log-level", "debug"));
    }

    [Fact]
    public void Vm_and_config_together_are_refused()
    {
        Assert.Equal(
            "--config and --vm cannot be used together (one source of devices)",
            Cli.Error("--config", "/tmp/c.yaml", "--vm", "socket=/tmp/s,uds-path=/tmp/u"));
    }

    [Fact]
    public void Vm_with_device_flags_is_refused()
    {
        Assert.Equal(
            "--vm cannot be combined with --guest-cid, --tx-buffer-size (put those settings inside each --vm)",
            Cli.Error("--vm", "socket=/tmp/s,uds-path=/tmp/u", "--tx-buffer-size", "4096", "--guest-cid", "4"));
    }

    [Theory]
    [InlineData("--guest-cid", "4")]
    [InlineData("--socket", "/tmp/s")]
    [InlineData("--uds-path", "/tmp/u")]
    [InlineData("--forward-cid", "1")]
    [InlineData("--forward-listen", "9001")]
    [InlineData("--tx-buffer-size", "4096")]
    [InlineData("--queue-size", "256")]
    [InlineData("--groups", "g")]
    public void Config_with_any_device_flag_is_refused(string flag, string value)
    {
        Assert.Equal(
            $"--config cannot be combined with {flag} (the file describes every device)",
            Cli.Error("--config", "/tmp/c.yaml", flag, value));
    }

    [Fact]
    public void Config_is_read_before_anything_else_is_looked_at()
    {
        string config = _dir.Write("c.yaml", "vms:\n  - {guest_cid: 9, socket: /tmp/s, uds_path: /tmp/u}\n");

        Assert.Equal(9UL, Assert.Single(Cli.Vms("--log-level", "warn", "--config", config)).GuestCid);
    }

    [Fact]
    public void Unknown_option_is_refused()
    {
        Assert.Equal("Unrecognized command or argument '--cid' (see --help)", Cli.Error("--cid", "4"));
    }

    [Fact]
    public void Positional_argument_is_refused()
    {
        Assert.Contains("Unrecognized command or argument '/tmp/s'", Cli.Error("/tmp/s"));
    }

    [Fact]
    public void Repeated_single_valued_option_is_refused()
    {
        Assert.Contains("'--socket' expects a single argument but 2 were provided", Cli.Error("--socket", "/tmp/a", "--socket", "/tmp/b", "--uds-path", "/tmp/u"));
        Assert.Contains("'--config' expects a single argument but 2 were provided", Cli.Error("--config", "/tmp/a", "--config", "/tmp/b"));
    }

    [Fact]
    public void Option_without_its_value_is_refused()
    {
        Assert.Contains("Required argument missing for option: '--vm'", Cli.Error("--vm"));
        Assert.Contains("Required argument missing for option: '--guest-cid'", Cli.Error("--socket", "/tmp/s", "--uds-path", "/tmp/u", "--guest-cid"));
    }

    [Fact]
    public void Short_forms_other_than_h_and_v_do_not_exist()
    {
        Assert.Contains("Unrecognized command or argument '-s'", Cli.Error("-s", "/tmp/s"));
    }
}
