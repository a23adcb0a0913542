using Vsock.Actors.Settings;

namespace Vsock.Launcher.Tests.Configuration;

/// <summary>The reference's own main.rs tests (test_vsock_config_setup_* and friends), with the same inputs and expectations.</summary>
public sealed class ReferenceTestCases : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Test_vsock_config_setup_unix()
    {
        string socket = _dir.File("vhost4.socket");
        string uds = _dir.File("vm4.vsock");

        VmSettings vm = Assert.Single(Cli.Vms(
            "--guest-cid", "3", "--socket", socket, "--uds-path", uds,
            "--tx-buffer-size", "65536", "--queue-size", "1024", "--groups", "group1"));

        Assert.Equal(3UL, vm.GuestCid);
        Assert.Equal(socket, vm.Socket);
        Assert.Equal(uds, vm.UdsPath);
        Assert.Null(vm.ForwardCid);
        Assert.Equal(64U * 1024, vm.TxBufferSize);
        Assert.Equal(1024, vm.QueueSize);
        Assert.Equal(["group1"], vm.Groups);
    }

    [Fact]
    public void Test_vsock_config_setup_vsock()
    {
        string socket = _dir.File("vhost4.socket");

        VmSettings vm = Assert.Single(Cli.Vms(
            "--guest-cid", "3", "--socket", socket, "--forward-cid", "1", "--forward-listen", "1234+4321",
            "--tx-buffer-size", "65536", "--queue-size", "1024", "--groups", "group1"));

        Assert.Equal(3UL, vm.GuestCid);
        Assert.Equal(socket, vm.Socket);
        Assert.Equal(1U, vm.ForwardCid);
        Assert.Equal([1234U, 4321U], vm.ForwardListen);
        Assert.Equal(64U * 1024, vm.TxBufferSize);
        Assert.Equal(1024, vm.QueueSize);
        Assert.Equal(["group1"], vm.Groups);
    }

    [Fact]
    public void Test_vsock_config_setup_from_vm_args()
    {
        string S(int n) => _dir.File($"vhost{n}.socket");
        string U(int n) => _dir.File($"vm{n}.vsock");

        IReadOnlyList<VmSettings> vms = Cli.Line(
            $"--vm socket={S(3)},uds_path={U(3)} " +
            $"--vm socket={S(4)},uds-path={U(4)},guest-cid=4,tx_buffer_size=65536,queue_size=1024,groups=group1 " +
            $"--vm groups=group2+group3,guest-cid=5,socket={S(5)},uds_path={U(5)},tx-buffer-size=32768,queue_size=256 " +
            $"--vm guest-cid=6,socket={S(6)},forward-cid=1,forward-listen=1234+4321,queue-size=2048");

        Assert.Equal(4, vms.Count);

        Assert.Equal(3UL, vms[0].GuestCid);
        Assert.Equal(S(3), vms[0].Socket);
        Assert.Equal(U(3), vms[0].UdsPath);
        Assert.Equal(65536U, vms[0].TxBufferSize);
        Assert.Equal(1024, vms[0].QueueSize);
        Assert.Equal(["default"], vms[0].Groups);

        Assert.Equal(4UL, vms[1].GuestCid);
        Assert.Equal(S(4), vms[1].Socket);
        Assert.Equal(U(4), vms[1].UdsPath);
        Assert.Equal(65536U, vms[1].TxBufferSize);
        Assert.Equal(1024, vms[1].QueueSize);
        Assert.Equal(["group1"], vms[1].Groups);

        Assert.Equal(5UL, vms[2].GuestCid);
        Assert.Equal(S(5), vms[2].Socket);
        Assert.Equal(U(5), vms[2].UdsPath);
        Assert.Equal(32768U, vms[2].TxBufferSize);
        Assert.Equal(256, vms[2].QueueSize);
        Assert.Equal(["group2", "group3"], vms[2].Groups);

        Assert.Equal(6UL, vms[3].GuestCid);
        Assert.Equal(S(6), vms[3].Socket);
        Assert.Null(vms[3].UdsPath);
        Assert.Equal(1U, vms[3].ForwardCid);
        Assert.Equal([1234U, 4321U], vms[3].ForwardListen);
        Assert.Equal(65536U, vms[3].TxBufferSize);
        Assert.Equal(2048, vms[3].QueueSize);
        Assert.Equal(["default"], vms[3].Groups);
    }

    [Fact]
    public void Test_vsock_config_setup_from_file()
    {
        string socketUnix = _dir.File("vhost4.socket");
        string socketVsock = _dir.File("vhost5.socket");
        string uds = _dir.File("vm4.vsock");
        string config = _dir.Write("config.yaml", $"""
            vms:
                - guest_cid: 4
                  socket: {socketUnix}
                  uds_path: {uds}
                  tx_buffer_size: 32768
                  queue_size: 256
                  groups: group1+group2
                - guest_cid: 5
                  socket: {socketVsock}
                  forward_cid: 1
                  forward_listen: 1234+4321
                  tx_buffer_size: 32768
            """);

        IReadOnlyList<VmSettings> vms = Cli.Vms("--config", config);

        Assert.Equal(2, vms.Count);
        Assert.Equal(4UL, vms[0].GuestCid);
        Assert.Equal(socketUnix, vms[0].Socket);
        Assert.Equal(uds, vms[0].UdsPath);
        Assert.Equal(32768U, vms[0].TxBufferSize);
        Assert.Equal(256, vms[0].QueueSize);
        Assert.Equal(["group1", "group2"], vms[0].Groups);

        Assert.Equal(5UL, vms[1].GuestCid);
        Assert.Equal(socketVsock, vms[1].Socket);
        Assert.Equal(1U, vms[1].ForwardCid);
        Assert.Equal([1234U, 4321U], vms[1].ForwardListen);
        Assert.Equal(32768U, vms[1].TxBufferSize);
        Assert.Equal(1024, vms[1].QueueSize);
        Assert.Equal(["default"], vms[1].Groups);

        // "Now test that optional parameters are correctly set to their default values."
        _dir.Write("config.yaml", $"""
            vms:
                - socket: {socketUnix}
                  uds_path: {uds}
            """);

        VmSettings vm = Assert.Single(Cli.Vms("--config", config));
        Assert.Equal(VmSettings.DefaultGuestCid, vm.GuestCid);
        Assert.Equal(socketUnix, vm.Socket);
        Assert.Equal(uds, vm.UdsPath);
        Assert.Equal(VmSettings.DefaultTxBufferSize, vm.TxBufferSize);
        Assert.Equal(VmSettings.DefaultQueueSize, vm.QueueSize);
        Assert.Equal([VmSettings.DefaultGroup], vm.Groups);
    }

    [Fact]
    public void Test_main_structs_empty_vm_value_is_a_bad_argument()
    {
        Assert.Contains("empty value", Cli.Error("--vm", ""));
    }

    [Fact]
    public void Test_main_structs_no_arguments_is_an_error()
    {
        Assert.Contains("no device configured", Cli.Error());
    }

    [Fact]
    public void Test_start_backend_servers_failure_two_devices_with_cid_3()
    {
        // The reference finds this only when the second backend registers (CidAlreadyInUse); we refuse it up front.
        string message = Cli.Error(
            "--vm", $"guest-cid=3,socket={_dir.File("test_vsock_server1.socket")},uds-path={_dir.File("test_vsock_server1.vsock")}",
            "--vm", $"guest-cid=3,socket={_dir.File("test_vsock_server2.socket")},uds-path={_dir.File("test_vsock_server2.vsock")}");

        Assert.Contains("guest CID 3 is already used by --vm #1", message);
    }
}
