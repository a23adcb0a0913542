using Vsock.Actors.Settings;

namespace Vsock.Launcher.Tests.Configuration;

/// <summary><c>max-connections</c> and <c>close-timeout-ms</c>: every source, both spellings, defaults and refusals.</summary>
public sealed class LimitSettingsTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Defaults_are_4096_connections_and_8_seconds()
    {
        VmSettings vm = Assert.Single(Cli.Vms("--socket", "/tmp/s", "--uds-path", "/tmp/u"));

        Assert.Equal(4096, vm.MaxConnections);
        Assert.Equal(TimeSpan.FromSeconds(8), vm.CloseTimeout);
        Assert.Equal(VmSettings.DefaultMaxConnections, vm.MaxConnections);
        Assert.Equal(VmSettings.DefaultCloseTimeout, vm.CloseTimeout);
    }

    [Fact]
    public void Top_level_flags()
    {
        VmSettings vm = Assert.Single(Cli.Vms("--socket", "/tmp/s", "--uds-path", "/tmp/u", "--max-connections", "100", "--close-timeout-ms", "2000"));

        Assert.Equal(100, vm.MaxConnections);
        Assert.Equal(TimeSpan.FromSeconds(2), vm.CloseTimeout);
    }

    [Theory]
    [InlineData("max-connections=7,close-timeout-ms=0")]
    [InlineData("max_connections=7,close_timeout_ms=0")]
    public void Vm_keys_in_both_spellings(string keys)
    {
        VmSettings vm = Assert.Single(Cli.Vms("--vm", $"socket=/tmp/s,uds-path=/tmp/u,{keys}"));

        Assert.Equal(7, vm.MaxConnections);
        Assert.Equal(TimeSpan.Zero, vm.CloseTimeout);
    }

    [Theory]
    [InlineData("max_connections", "close_timeout_ms")]
    [InlineData("max-connections", "close-timeout-ms")]
    public void Yaml_keys_in_both_spellings(string max, string close)
    {
        string path = _dir.Write("vms.yaml", $"""
            vms:
              - socket: /tmp/s
                uds_path: /tmp/u
                {max}: 1048576
                {close}: 3600000
            """);

        VmSettings vm = Assert.Single(Cli.Vms("--config", path));

        Assert.Equal(1048576, vm.MaxConnections);
        Assert.Equal(TimeSpan.FromHours(1), vm.CloseTimeout);
    }

    [Theory]
    [InlineData("0", "--max-connections: max connections 0 would refuse every connection (at least 1)")]
    [InlineData("1048577", "--max-connections: max connections 1048577 is more than 1048576 (no process can hold more file descriptors)")]
    [InlineData("-1", "--max-connections: '-1' is not an unsigned integer")]
    public void Bad_max_connections_is_refused(string value, string message)
    {
        Assert.Equal(message, Cli.Error("--socket", "/tmp/s", "--uds-path", "/tmp/u", "--max-connections", value));
    }

    [Theory]
    [InlineData("3600001", "--close-timeout-ms: close timeout 3600001 ms is more than 3600000 (one hour)")]
    [InlineData("2s", "--close-timeout-ms: '2s' is not an unsigned integer")]
    public void Bad_close_timeout_is_refused(string value, string message)
    {
        Assert.Equal(message, Cli.Error("--socket", "/tmp/s", "--uds-path", "/tmp/u", "--close-timeout-ms", value));
    }

    [Fact]
    public void Bad_value_in_vm_names_the_key()
    {
        Assert.Equal(
            "--vm socket=/tmp/s,uds-path=/tmp/u,max_connections=0: max_connections: max connections 0 would refuse every connection (at least 1)",
            Cli.Error("--vm", "socket=/tmp/s,uds-path=/tmp/u,max_connections=0"));
    }

    [Fact]
    public void The_flags_conflict_with_vm_like_the_other_device_flags()
    {
        Assert.Contains("--vm cannot be combined with --max-connections", Cli.Error("--vm", "socket=/tmp/s,uds-path=/tmp/u", "--max-connections", "5"));
    }
}
