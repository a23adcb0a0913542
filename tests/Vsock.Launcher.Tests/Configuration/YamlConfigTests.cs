using Vsock.Actors.Settings;

namespace Vsock.Launcher.Tests.Configuration;

public sealed class YamlConfigTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private IReadOnlyList<VmSettings> Load(string yaml) => Cli.Vms("--config", _dir.Write("config.yaml", yaml));

    [Fact]
    public void Snake_case_keys_are_read()
    {
        VmSettings vm = Assert.Single(Load("""
            vms:
              - guest_cid: 4
                socket: /tmp/vhost4.socket
                uds_path: /tmp/vm4.vsock
                tx_buffer_size: 32768
                queue_size: 256
                groups: group1+group2
            """));

        Assert.Equal(4UL, vm.GuestCid);
        Assert.Equal("/tmp/vhost4.socket", vm.Socket);
        Assert.Equal("/tmp/vm4.vsock", vm.UdsPath);
        Assert.Equal(32768U, vm.TxBufferSize);
        Assert.Equal(256, vm.QueueSize);
        Assert.Equal(["group1", "group2"], vm.Groups);
    }

    [Fact]
    public void Hyphenated_keys_are_read_too()
    {
        VmSettings vm = Assert.Single(Load("""
            vms:
              - guest-cid: 5
                socket: /tmp/vhost5.socket
                forward-cid: 1
                forward-listen: 9001+9002
                tx-buffer-size: 4096
                queue-size: 128
            """));

        Assert.Equal(5UL, vm.GuestCid);
        Assert.Equal(1U, vm.ForwardCid);
        Assert.Equal([9001U, 9002U], vm.ForwardListen);
        Assert.Equal(4096U, vm.TxBufferSize);
        Assert.Equal(128, vm.QueueSize);
    }

    [Fact]
    public void A_single_listen_port_may_be_a_yaml_integer_or_a_quoted_string()
    {
        // The reference needs "9001" quoted (a YAML integer does not fit its String field).
        IReadOnlyList<VmSettings> vms = Load("""
            vms:
              - guest_cid: 4
                socket: /tmp/s4
                forward_cid: 1
                forward_listen: 9001
              - guest_cid: 5
                socket: /tmp/s5
                forward_cid: 1
                forward_listen: "9002+9003"
            """);

        Assert.Equal([9001U], vms[0].ForwardListen);
        Assert.Equal([9002U, 9003U], vms[1].ForwardListen);
    }

    [Fact]
    public void Flow_style_and_quoted_paths_are_read()
    {
        VmSettings vm = Assert.Single(Load("""
            vms: [{guest_cid: 6, socket: "/tmp/with space.socket", uds_path: '/tmp/u'}]
            """));

        Assert.Equal(6UL, vm.GuestCid);
        Assert.Equal("/tmp/with space.socket", vm.Socket);
        Assert.Equal("/tmp/u", vm.UdsPath);
    }

    [Fact]
    public void Relative_config_path_is_read_from_the_current_directory()
    {
        _dir.Write("relative.yaml", "vms:\n  - socket: /tmp/s\n    uds_path: /tmp/u\n");
        string relative = Path.GetRelativePath(Environment.CurrentDirectory, _dir.File("relative.yaml"));

        Assert.Equal("/tmp/s", Assert.Single(Cli.Vms("--config", relative)).Socket);
    }

    [Fact]
    public void Comments_and_document_start_marker_are_fine()
    {
        VmSettings vm = Assert.Single(Load("""
            # devices
            ---
            vms:
              - socket: /tmp/s   # vhost-user
                uds_path: /tmp/u
            """));

        Assert.Equal("/tmp/s", vm.Socket);
    }
}
