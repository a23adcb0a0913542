using Vsock.Actors.Settings;

namespace Vsock.Launcher.Tests.Configuration;

/// <summary><c>--cluster-bind</c>, <c>--cluster-seeds</c> and the YAML <c>cluster:</c> mapping: values, defaults and errors.</summary>
public sealed class ClusterSettingsTests : IDisposable
{
    private const string Vm = "guest-cid=3,socket=/tmp/s3,uds-path=/tmp/u3";
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static ClusterSettings? Cluster(params string[] flags) => Cli.Parse(["--vm", Vm, .. flags]).Cluster;

    private static string Error(params string[] flags) => Cli.Error(["--vm", Vm, .. flags]);

    private string Yaml(string cluster) => _dir.Write("c.yaml", $"vms:\n  - guest_cid: 3\n    socket: /tmp/s3\n    uds_path: /tmp/u3\n{cluster}");

    [Fact]
    public void Without_cluster_settings_there_is_no_cluster()
    {
        Assert.Null(Cluster());
    }

    [Fact]
    public void Bind_and_seeds_make_a_cluster_node()
    {
        var cluster = Cluster("--cluster-bind", "127.0.0.1:25520", "--cluster-seeds", "127.0.0.1:25520+node2.example:25521");

        Assert.NotNull(cluster);
        Assert.Equal(new ClusterEndpoint("127.0.0.1", 25520), cluster.Bind);
        Assert.Equal([new ClusterEndpoint("127.0.0.1", 25520), new ClusterEndpoint("node2.example", 25521)], cluster.Seeds);
        Assert.Equal("vhost-device-vsock", cluster.ActorSystemName);
    }

    [Fact]
    public void The_flags_go_with_top_level_device_flags_too()
    {
        var options = Cli.Parse("--socket", "/tmp/s", "--uds-path", "/tmp/u", "--cluster-bind", "10.0.0.1:1", "--cluster-seeds", "10.0.0.1:1");
        Assert.Equal(new ClusterEndpoint("10.0.0.1", 1), options.Cluster!.Bind);
    }

    [Fact]
    public void IPv6_goes_in_brackets()
    {
        var cluster = Cluster("--cluster-bind", "[::1]:25520", "--cluster-seeds", "[::1]:25520");
        Assert.Equal(new ClusterEndpoint("::1", 25520), cluster!.Bind);
        Assert.Equal("[::1]:25520", cluster.Bind.ToString());
    }

    [Theory]
    [InlineData("--cluster-bind", "127.0.0.1", "--cluster-bind: '127.0.0.1' is not HOST:PORT")]
    [InlineData("--cluster-bind", "127.0.0.1:", "--cluster-bind: '127.0.0.1:' is not HOST:PORT")]
    [InlineData("--cluster-bind", "127.0.0.1:0", "--cluster-bind: port '0' is not a TCP port (1 … 65535)")]
    [InlineData("--cluster-bind", "127.0.0.1:65536", "--cluster-bind: port '65536' is not a TCP port (1 … 65535)")]
    [InlineData("--cluster-bind", "127.0.0.1:+80", "--cluster-bind: port '+80' is not a TCP port (1 … 65535)")]
    [InlineData("--cluster-bind", "::1:25520", "--cluster-bind: '::1:25520': an IPv6 address goes in brackets, as [::1]:25520")]
    [InlineData("--cluster-bind", "[::1:25520", "--cluster-bind: '[::1' is not an IPv6 address in brackets")]
    [InlineData("--cluster-bind", "no such host:25520", "--cluster-bind: 'no such host' is not a host name or an IP address")]
    [InlineData("--cluster-bind", "0.0.0.0:25520", "--cluster-bind: 0.0.0.0 is a wildcard address: give the one address the other nodes reach this node on (it is also the address it binds)")]
    [InlineData("--cluster-bind", "[::]:25520", "--cluster-bind: :: is a wildcard address: give the one address the other nodes reach this node on (it is also the address it binds)")]
    public void A_bad_bind_address_is_one_line(string flag, string value, string message)
    {
        Assert.Equal(message, Error(flag, value, "--cluster-seeds", "127.0.0.1:25520"));
    }

    [Fact]
    public void Bad_seeds_are_refused()
    {
        Assert.Equal("--cluster-seeds: empty seed in '127.0.0.1:1++127.0.0.1:2' (seeds are HOST:PORT joined by '+')",
            Error("--cluster-bind", "127.0.0.1:1", "--cluster-seeds", "127.0.0.1:1++127.0.0.1:2"));
        Assert.Equal("--cluster-seeds: seed 127.0.0.1:2 is listed twice",
            Error("--cluster-bind", "127.0.0.1:1", "--cluster-seeds", "127.0.0.1:2+127.0.0.1:2"));
        Assert.Equal("--cluster-seeds: 'seed' is not HOST:PORT",
            Error("--cluster-bind", "127.0.0.1:1", "--cluster-seeds", "seed"));
    }

    [Fact]
    public void One_without_the_other_is_refused()
    {
        Assert.StartsWith("--cluster-bind needs --cluster-seeds", Error("--cluster-bind", "127.0.0.1:1"));
        Assert.StartsWith("--cluster-seeds needs --cluster-bind", Error("--cluster-seeds", "127.0.0.1:1"));
    }

    [Fact]
    public void Yaml_cluster_with_a_list_of_seeds()
    {
        var path = Yaml("cluster:\n  bind: 127.0.0.1:25520\n  seeds:\n    - 127.0.0.1:25520\n    - 127.0.0.1:25521\n");
        var cluster = Cli.Parse("--config", path).Cluster;

        Assert.Equal(new ClusterEndpoint("127.0.0.1", 25520), cluster!.Bind);
        Assert.Equal(2, cluster.Seeds.Count);
    }

    [Fact]
    public void Yaml_cluster_with_joined_seeds()
    {
        var path = Yaml("cluster:\n  bind: \"[::1]:25520\"\n  seeds: \"[::1]:25520+[::1]:25521\"\n");
        Assert.Equal(new ClusterEndpoint("::1", 25521), Cli.Parse("--config", path).Cluster!.Seeds[1]);
    }

    [Fact]
    public void Yaml_cluster_errors_name_their_place()
    {
        var path = Yaml("cluster:\n  bind: 127.0.0.1:25520\n  seeds:\n    - 127.0.0.1:0\n");
        Assert.Equal($"{path}:8:7: cluster.seeds: port '0' is not a TCP port (1 … 65535)", Cli.Error("--config", path));

        path = Yaml("cluster:\n  bind: 127.0.0.1:25520\n  seed: 127.0.0.1:25520\n");
        Assert.Equal($"{path}:7:3: cluster: unknown key 'seed' (expected bind and seeds)", Cli.Error("--config", path));

        path = Yaml("cluster:\n  bind: 127.0.0.1:25520\n");
        Assert.StartsWith($"{path}:6:3: cluster: bind needs seeds", Cli.Error("--config", path));

        path = Yaml("cluster: 127.0.0.1:25520\n");
        Assert.Equal($"{path}:5:10: 'cluster' must be a mapping with 'bind' and 'seeds'", Cli.Error("--config", path));
    }

    [Fact]
    public void Flags_and_a_yaml_cluster_are_not_mixed()
    {
        var path = Yaml("cluster:\n  bind: 127.0.0.1:25520\n  seeds: 127.0.0.1:25520\n");
        Assert.Equal("--cluster-bind/--cluster-seeds cannot be combined with the 'cluster:' mapping of --config (one source of cluster settings)",
            Cli.Error("--config", path, "--cluster-bind", "127.0.0.1:1", "--cluster-seeds", "127.0.0.1:1"));

        // Without a cluster: mapping the flags go with --config.
        Assert.NotNull(Cli.Parse("--config", Yaml(""), "--cluster-bind", "127.0.0.1:1", "--cluster-seeds", "127.0.0.1:1").Cluster);
    }
}
