using Vsock.Actors.Settings;

namespace Vsock.Launcher.Tests.Configuration;

/// <summary>The command lines and the YAML file of the reference README (shared/seeds/002), exactly as printed.</summary>
public sealed class SeedReadmeTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Unix_backend_usage_with_flags()
    {
        // "vhost-device-vsock --guest-cid=<CID> --socket=<path> --uds-path=<path> [--tx-buffer-size=...] [--queue-size=...] [--groups=...]"
        VmSettings vm = Assert.Single(Cli.Line(
            "--guest-cid=4 --socket=/tmp/vhost4.socket --uds-path=/tmp/vm4.vsock --tx-buffer-size=65536 --queue-size=1024 --groups=group1+group2"));

        Assert.Equal(4UL, vm.GuestCid);
        Assert.Equal("/tmp/vm4.vsock", vm.UdsPath);
        Assert.Equal(["group1", "group2"], vm.Groups);
    }

    [Fact]
    public void Unix_backend_usage_with_vm_and_guest_cid_underscore()
    {
        // "vhost-device-vsock --vm guest_cid=<CID>,socket=<path>,uds-path=<path>[,tx-buffer-size=...][,queue-size=...][,groups=...]"
        VmSettings vm = Assert.Single(Cli.Line(
            "--vm guest_cid=4,socket=/tmp/vhost4.socket,uds-path=/tmp/vm4.vsock,tx-buffer-size=65536,queue-size=1024,groups=group1+group2"));

        Assert.Equal(4UL, vm.GuestCid);
        Assert.Equal(["group1", "group2"], vm.Groups);
    }

    [Fact]
    public void Vsock_backend_usage_with_flags()
    {
        VmSettings vm = Assert.Single(Cli.Line(
            "--guest-cid=4 --socket=/tmp/vhost4.socket --forward-cid=1 --forward-listen=9001+9002 --tx-buffer-size=65536 --queue-size=1024"));

        Assert.Equal(1U, vm.ForwardCid);
        Assert.Equal([9001U, 9002U], vm.ForwardListen);
    }

    [Fact]
    public void Vsock_backend_usage_with_vm()
    {
        VmSettings vm = Assert.Single(Cli.Line(
            "--vm guest_cid=4,socket=/tmp/vhost4.socket,forward-cid=1,forward-listen=9001+9002,tx-buffer-size=65536,queue-size=1024,groups=group1"));

        Assert.Equal(1U, vm.ForwardCid);
        Assert.Equal([9001U, 9002U], vm.ForwardListen);
        Assert.Equal(["group1"], vm.Groups);
    }

    [Fact]
    public void Three_devices_with_repeated_vm()
    {
        IReadOnlyList<VmSettings> vms = Cli.Line("""
            --vm guest-cid=3,socket=/tmp/vhost3.socket,uds-path=/tmp/vm3.vsock,groups=group1+groupA \
            --vm guest-cid=4,socket=/tmp/vhost4.socket,uds-path=/tmp/vm4.vsock,tx-buffer-size=32768,queue-size=256 \
            --vm guest-cid=5,socket=/tmp/vhost5.socket,forward-cid=1,forward-listen=9001+9002,tx-buffer-size=32768,queue-size=1024
            """);

        Assert.Equal(3, vms.Count);
        Assert.Equal(["group1", "groupA"], vms[0].Groups);
        Assert.Equal("/tmp/vm4.vsock", vms[1].UdsPath);
        Assert.Equal(32768U, vms[1].TxBufferSize);
        Assert.Equal(256, vms[1].QueueSize);
        Assert.Equal(["default"], vms[1].Groups);
        Assert.Equal(1U, vms[2].ForwardCid);
        Assert.Equal([9001U, 9002U], vms[2].ForwardListen);
    }

    [Fact]
    public void Configuration_file_example_with_its_hyphenated_keys()
    {
        // Verbatim, including "forward-cid:"/"forward-listen:", which the reference silently ignores
        // (and then rejects the file because the third VM has no backend).
        string config = _dir.Write("vms.yaml", """
            vms:
              - guest_cid: 3
                socket: /tmp/vhost3.socket
                uds_path: /tmp/vm3.sock
                tx_buffer_size: 65536
                queue_size: 1024
                groups: group1+groupA
              - guest_cid: 4
                socket: /tmp/vhost4.socket
                uds_path: /tmp/vm4.sock
                tx_buffer_size: 32768
                queue_size: 256
                groups: group2+groupB
              - guest_cid: 5
                socket: /tmp/vhost5.socket
                forward-cid: 1
                forward-listen: 9001+9002
                tx_buffer_size: 32768
                queue_size: 1024
            """);

        IReadOnlyList<VmSettings> vms = Cli.Vms($"--config={config}");

        Assert.Equal(3, vms.Count);
        Assert.Equal(3UL, vms[0].GuestCid);
        Assert.Equal("/tmp/vhost3.socket", vms[0].Socket);
        Assert.Equal("/tmp/vm3.sock", vms[0].UdsPath);
        Assert.Equal(65536U, vms[0].TxBufferSize);
        Assert.Equal(1024, vms[0].QueueSize);
        Assert.Equal(["group1", "groupA"], vms[0].Groups);
        Assert.Equal(4UL, vms[1].GuestCid);
        Assert.Equal("/tmp/vm4.sock", vms[1].UdsPath);
        Assert.Equal(32768U, vms[1].TxBufferSize);
        Assert.Equal(256, vms[1].QueueSize);
        Assert.Equal(["group2", "groupB"], vms[1].Groups);
        Assert.Equal(5UL, vms[2].GuestCid);
        Assert.Equal(1U, vms[2].ForwardCid);
        Assert.Equal([9001U, 9002U], vms[2].ForwardListen);
        Assert.Equal(32768U, vms[2].TxBufferSize);
        Assert.Equal(["default"], vms[2].Groups);
    }

    [Theory]
    [InlineData("--vm guest-cid=4,uds-path=/tmp/vm4.vsock,socket=/tmp/vhost4.socket")]
    [InlineData("--vm guest-cid=4,uds-path=/tmp/vm4.vsock,socket=/tmp/vhost4.socket,tx-buffer-size=65536,queue-size=1024")]
    public void Host_guest_examples(string line)
    {
        VmSettings vm = Assert.Single(Cli.Line(line));

        Assert.Equal(4UL, vm.GuestCid);
        Assert.Equal("/tmp/vm4.vsock", vm.UdsPath);
        Assert.Equal("/tmp/vhost4.socket", vm.Socket);
        Assert.Equal(65536U, vm.TxBufferSize);
        Assert.Equal(1024, vm.QueueSize);
    }

    [Fact]
    public void Sibling_vms_example()
    {
        IReadOnlyList<VmSettings> vms = Cli.Line("""
            --vm guest-cid=3,uds-path=/tmp/vm3.vsock,socket=/tmp/vhost3.socket,groups=group1+group2 \
            --vm guest-cid=4,uds-path=/tmp/vm4.vsock,socket=/tmp/vhost4.socket,groups=group1
            """);

        Assert.Equal(["group1", "group2"], vms[0].Groups);
        Assert.Equal(["group1"], vms[1].Groups);
    }

    [Fact]
    public void Forwarding_example()
    {
        VmSettings vm = Assert.Single(Cli.Line("--vm guest-cid=4,forward-cid=1,forward-listen=9001+9002,socket=/tmp/vhost4.socket"));

        Assert.Equal(4UL, vm.GuestCid);
        Assert.Equal(1U, vm.ForwardCid);
        Assert.Equal([9001U, 9002U], vm.ForwardListen);
    }
}
