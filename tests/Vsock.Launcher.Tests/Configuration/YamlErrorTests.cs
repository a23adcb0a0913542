namespace Vsock.Launcher.Tests.Configuration;

public sealed class YamlErrorTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>The error for this file, with the file's path replaced by F.</summary>
    private string Error(string yaml)
    {
        string path = _dir.Write("c.yaml", yaml);
        return Cli.Error("--config", path).Replace(path, "F", StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_file_is_refused()
    {
        string path = _dir.File("absent.yaml");

        Assert.StartsWith($"--config {path}: cannot read the file: ", Cli.Error("--config", path));
    }

    [Fact]
    public void Directory_is_refused()
    {
        Assert.StartsWith($"--config {_dir.Path}: cannot read the file: ", Cli.Error("--config", _dir.Path));
    }

    [Fact]
    public void Malformed_yaml_is_refused_with_line_and_column()
    {
        string message = Error("vms:\n  - socket: [/tmp/s\n    uds_path: /tmp/u\n");

        Assert.Matches(@"^F:\d+:\d+: malformed YAML: .+", message);
    }

    [Fact]
    public void Bad_indentation_is_refused_with_its_line()
    {
        Assert.StartsWith("F:3:", Error("vms:\n  - socket: /tmp/s\n   uds_path: /tmp/u\n"));
    }

    [Fact]
    public void Tab_indentation_is_refused()
    {
        Assert.Contains("malformed YAML", Error("vms:\n\t- socket: /tmp/s\n"));
    }

    [Fact]
    public void Unknown_key_is_refused_with_its_position()
    {
        Assert.Equal(
            "F:4:5: vms[0]: unknown key 'forward_port' (expected one of guest_cid, socket, uds_path, forward_cid, " +
            "forward_listen, tx_buffer_size, queue_size, groups, max_connections, close_timeout_ms, forward_listen_seqpacket, or the same with '-')",
            Error("vms:\n  - socket: /tmp/s\n    forward_cid: 1\n    forward_port: 9000\n"));
    }

    [Fact]
    public void Group_key_gets_a_hint()
    {
        Assert.Contains("unknown key 'group' (did you mean groups?)", Error("vms:\n  - socket: /tmp/s\n    uds_path: /tmp/u\n    group: g\n"));
    }

    [Fact]
    public void Unknown_top_level_key_is_refused()
    {
        Assert.Equal(
            "F:1:1: unknown top-level key 'devices' (only 'vms', 'metrics_listen' and 'cluster' are allowed)",
            Error("devices:\n  - socket: /tmp/s\n    uds_path: /tmp/u\nvms:\n  - socket: /tmp/s\n    uds_path: /tmp/u\n"));
    }

    [Fact]
    public void Missing_vms_is_refused()
    {
        Assert.Equal("F: the file is empty (expected a 'vms:' list)", Error(""));
        Assert.Equal("F: the file is empty (expected a 'vms:' list)", Error("# nothing\n"));
        Assert.Equal("F: the file is empty (expected a 'vms:' list)", Error("---\n"));
        Assert.Equal("F: missing 'vms:' list", Error("{}\n"));
    }

    [Fact]
    public void Top_level_that_is_not_a_mapping_is_refused()
    {
        Assert.Equal("F:1:1: the top level must be a mapping with a 'vms:' list", Error("- socket: /tmp/s\n"));
    }

    [Fact]
    public void Empty_vms_list_is_refused()
    {
        Assert.Equal("F:1:6: 'vms' is empty (at least one VM is required)", Error("vms: []\n"));
    }

    [Fact]
    public void Vms_that_is_not_a_list_is_refused()
    {
        Assert.Equal("F:1:6: 'vms' must be a list of VMs", Error("vms: 3\n"));
        Assert.Equal("F:2:3: 'vms' must be a list of VMs", Error("vms:\n  socket: /tmp/s\n"));
    }

    [Fact]
    public void Null_vms_is_refused()
    {
        Assert.Contains("'vms' must be a list of VMs", Error("vms:\n"));
    }

    [Fact]
    public void Vm_that_is_not_a_mapping_is_refused()
    {
        Assert.Equal("F:3:5: vms[1] must be a mapping of settings (key: value)", Error("vms:\n  - {socket: /tmp/s, uds_path: /tmp/u}\n  - /tmp/s\n"));
    }

    [Fact]
    public void Value_that_is_a_list_is_refused()
    {
        Assert.Equal(
            "F:4:21: vms[0].forward_listen: expected a single value, not a list",
            Error("vms:\n  - socket: /tmp/s\n    forward_cid: 1\n    forward_listen: [9001, 9002]\n"));
    }

    [Fact]
    public void Value_that_is_a_mapping_is_refused()
    {
        Assert.Contains("vms[0].socket: expected a single value, not a mapping", Error("vms:\n  - socket: {path: /tmp/s}\n    uds_path: /tmp/u\n"));
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ~")]
    [InlineData(" null")]
    public void Null_value_is_refused(string value)
    {
        Assert.Contains("vms[0].uds_path: has no value", Error($"vms:\n  - socket: /tmp/s\n    uds_path:{value}\n"));
    }

    [Fact]
    public void Quoted_number_is_the_wrong_type()
    {
        Assert.Equal(
            "F:2:16: vms[0].guest_cid: expected an integer, not the quoted string \"4\"",
            Error("vms:\n  - guest_cid: \"4\"\n    socket: /tmp/s\n    uds_path: /tmp/u\n"));
    }

    [Fact]
    public void Text_for_an_integer_is_the_wrong_type()
    {
        Assert.Equal(
            "F:2:17: vms[0].queue_size: 'big' is not an unsigned integer",
            Error("vms:\n  - queue_size: big\n    socket: /tmp/s\n    uds_path: /tmp/u\n"));
    }

    [Fact]
    public void Boolean_for_an_integer_is_the_wrong_type()
    {
        Assert.Contains("vms[0].tx_buffer_size: 'true' is not an unsigned integer", Error("vms:\n  - tx_buffer_size: true\n    socket: /tmp/s\n    uds_path: /tmp/u\n"));
    }

    [Fact]
    public void Key_in_both_spellings_is_refused()
    {
        Assert.Equal("F:4:5: vms[0]: 'uds-path' repeats 'uds_path'", Error("vms:\n  - socket: /tmp/s\n    uds_path: /tmp/u\n    uds-path: /tmp/v\n"));
    }

    [Fact]
    public void Exact_duplicate_key_is_refused()
    {
        Assert.Contains("Duplicate key", Error("vms:\n  - socket: /tmp/s\n    socket: /tmp/t\n    uds_path: /tmp/u\n"));
    }

    [Fact]
    public void Two_documents_are_refused()
    {
        Assert.StartsWith("F:4:1: more than one YAML document", Error("vms:\n  - {socket: /tmp/s, uds_path: /tmp/u}\n---\nvms:\n  - {socket: /tmp/t, uds_path: /tmp/v}\n"));
    }

    [Fact]
    public void Device_rules_point_at_the_vm()
    {
        Assert.Equal(
            "F:3:5: vms[1]: missing uds_path or forward_cid (a device needs one backend)",
            Error("vms:\n  - {guest_cid: 3, socket: /tmp/s, uds_path: /tmp/u}\n  - guest_cid: 4\n    socket: /tmp/t\n"));
        Assert.Equal(
            "F:3:5: vms[1]: missing socket (the vhost-user socket to listen on for the VMM)",
            Error("vms:\n  - {guest_cid: 3, socket: /tmp/s, uds_path: /tmp/u}\n  - guest_cid: 4\n    uds_path: /tmp/v\n"));
        Assert.Contains(
            "vms[0]: uds_path and forward_cid cannot both be given",
            Error("vms:\n  - {socket: /tmp/s, uds_path: /tmp/u, forward-cid: 1}\n"));
        Assert.Contains(
            "vms[0]: forward_listen belongs to the vsock backend (forward_cid); it cannot be used with uds_path",
            Error("vms:\n  - {socket: /tmp/s, uds_path: /tmp/u, forward_listen: 9001}\n"));
    }

    [Fact]
    public void Value_rules_point_at_the_value()
    {
        Assert.Equal(
            "F:2:16: vms[0].guest_cid: guest CID 2 is reserved (0, 1, 2 and 4294967295 cannot be used)",
            Error("vms:\n  - guest_cid: 2\n    socket: /tmp/s\n    uds_path: /tmp/u\n"));
        Assert.Contains(
            "vms[0].forward_listen: empty port in '9001++9002'",
            Error("vms:\n  - {socket: /tmp/s, forward_cid: 1, forward_listen: 9001++9002}\n"));
        Assert.Contains("vms[0].groups: empty group name", Error("vms:\n  - {socket: /tmp/s, uds_path: /tmp/u, groups: \"\"}\n"));
    }

    [Fact]
    public void Duplicate_cid_across_the_file_names_both_entries()
    {
        Assert.Equal(
            "F:3:5: vms[1]: guest CID 3 is already used by vms[0] (line 2)",
            Error("vms:\n  - {socket: /tmp/s, uds_path: /tmp/u}\n  - {guest_cid: 3, socket: /tmp/t, uds_path: /tmp/v}\n"));
    }

    [Fact]
    public void Duplicate_socket_across_the_file_is_refused()
    {
        Assert.Contains(
            "vms[1]: socket /tmp/s is already used as the socket of vms[0] (line 2)",
            Error("vms:\n  - {guest_cid: 3, socket: /tmp/s, uds_path: /tmp/u}\n  - {guest_cid: 4, socket: /tmp/s, uds_path: /tmp/v}\n"));
    }
}
