using System.Net;

namespace Vsock.Launcher.Tests.Configuration;

/// <summary><c>--metrics-listen HOST:PORT</c> and YAML <c>metrics_listen</c>: what is accepted, and the one-line errors.</summary>
public sealed class MetricsListenTests : IDisposable
{
    private static readonly string[] Device = ["--socket", "/tmp/s", "--uds-path", "/tmp/u"];
    private const string Vms = "vms:\n  - socket: /tmp/s\n    uds_path: /tmp/u\n";
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Without_it_there_is_no_endpoint()
    {
        Assert.Null(Cli.Parse(Device).MetricsListen);
    }

    [Theory]
    [InlineData("127.0.0.1:9100", "127.0.0.1", 9100)]
    [InlineData("localhost:9100", "127.0.0.1", 9100)]
    [InlineData("LocalHost:1", "127.0.0.1", 1)]
    [InlineData("[::1]:9100", "::1", 9100)]
    [InlineData("0.0.0.0:65535", "0.0.0.0", 65535)]
    [InlineData("127.0.0.1:0", "127.0.0.1", 0)]
    public void The_flag_takes_an_address_and_a_port(string value, string address, int port)
    {
        Assert.Equal(new IPEndPoint(IPAddress.Parse(address), port), Cli.Parse([.. Device, "--metrics-listen", value]).MetricsListen);
    }

    [Fact]
    public void The_flag_goes_with_vm_and_with_config()
    {
        Assert.NotNull(Cli.Parse("--vm", "socket=/tmp/s,uds-path=/tmp/u", "--metrics-listen", "127.0.0.1:9100").MetricsListen);
        Assert.NotNull(Cli.Parse("--config", _dir.Write("c.yaml", Vms), "--metrics-listen=127.0.0.1:9100").MetricsListen);
    }

    [Theory]
    [InlineData("metrics_listen")]
    [InlineData("metrics-listen")]
    public void The_yaml_file_takes_it_at_the_top_level_in_either_spelling(string key)
    {
        string path = _dir.Write("c.yaml", $"{key}: 127.0.0.1:9100\n{Vms}");

        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 9100), Cli.Parse("--config", path).MetricsListen);
    }

    [Theory]
    [InlineData("9100", "'9100' is not HOST:PORT (e.g. 127.0.0.1:9100 or [::1]:9100)")]
    [InlineData("127.0.0.1:", "'127.0.0.1:' is not HOST:PORT (e.g. 127.0.0.1:9100 or [::1]:9100)")]
    [InlineData("127.0.0.1:65536", "port '65536' is not a number from 0 to 65535")]
    [InlineData("127.0.0.1:-1", "port '-1' is not a number from 0 to 65535")]
    [InlineData("::1:9100", "'::1' is not an IPv4 address, a bracketed IPv6 address or localhost")]
    [InlineData("metrics.example:9100", "'metrics.example' is not an IPv4 address, a bracketed IPv6 address or localhost")]
    [InlineData("[127.0.0.1]:9100", "'[127.0.0.1]' is not an IPv4 address, a bracketed IPv6 address or localhost")]
    public void A_bad_value_is_one_line_naming_the_flag(string value, string problem)
    {
        Assert.Equal($"--metrics-listen: {problem}", Cli.Error([.. Device, "--metrics-listen", value]));
    }

    [Fact]
    public void A_bad_yaml_value_names_its_line_and_column()
    {
        string path = _dir.Write("c.yaml", $"{Vms}metrics_listen: 127.0.0.1:http\n");

        Assert.Equal($"{path}:4:17: metrics_listen: port 'http' is not a number from 0 to 65535", Cli.Error("--config", path));
    }

    [Theory]
    [InlineData("metrics_listen:\n", "F:4:16: metrics_listen: has no value")]
    [InlineData("metrics_listen: [127.0.0.1:9100]\n", "F:4:17: metrics_listen: expected a single value, not a list")]
    [InlineData("metrics_listen: 127.0.0.1:9100\nmetrics-listen: 127.0.0.1:9101\n", "F:5:1: 'metrics-listen' is given twice")]
    public void A_yaml_value_of_the_wrong_shape_is_refused(string tail, string message)
    {
        string path = _dir.Write("c.yaml", Vms + tail);

        Assert.Equal(message, Cli.Error("--config", path).Replace(path, "F", StringComparison.Ordinal));
    }

    [Fact]
    public void The_flag_and_the_yaml_key_are_not_both_given()
    {
        string path = _dir.Write("c.yaml", $"metrics_listen: 127.0.0.1:9100\n{Vms}");

        Assert.Equal(
            $"--metrics-listen cannot be combined with {path}:1:17: metrics_listen (one source of the metrics endpoint)",
            Cli.Error("--config", path, "--metrics-listen", "127.0.0.1:9101"));
    }
}
