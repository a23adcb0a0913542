using Vsock.Actors.Settings;

namespace Vsock.Launcher.Tests.Configuration;

public class VmArgumentTests
{
    [Fact]
    public void Hyphenated_keys_are_read()
    {
        VmSettings vm = Assert.Single(Cli.Vms("--vm",
            "guest-cid=4,socket=/tmp/s,uds-path=/tmp/u,tx-buffer-size=32768,queue-size=256,groups=a+b"));

        Assert.Equal(4UL, vm.GuestCid);
        Assert.Equal("/tmp/s", vm.Socket);
        Assert.Equal("/tmp/u", vm.UdsPath);
        Assert.Equal(32768U, vm.TxBufferSize);
        Assert.Equal(256, vm.QueueSize);
        Assert.Equal(["a", "b"], vm.Groups);
    }

    [Fact]
    public void Underscore_keys_are_read()
    {
        VmSettings vm = Assert.Single(Cli.Vms("--vm",
            "guest_cid=4,socket=/tmp/s,uds_path=/tmp/u,tx_buffer_size=32768,queue_size=256,groups=a"));

        Assert.Equal(4UL, vm.GuestCid);
        Assert.Equal("/tmp/u", vm.UdsPath);
        Assert.Equal(32768U, vm.TxBufferSize);
        Assert.Equal(256, vm.QueueSize);
        Assert.Equal(["a"], vm.Groups);
    }

    [Theory]
    [InlineData("forward-cid=1,forward-listen=9001+9002")]
    [InlineData("forward_cid=1,forward_listen=9001+9002")]
    public void Vsock_backend_keys_are_read_in_both_spellings(string backend)
    {
        VmSettings vm = Assert.Single(Cli.Vms("--vm", $"guest-cid=5,socket=/tmp/s,{backend}"));

        Assert.Equal(1U, vm.ForwardCid);
        Assert.Equal([9001U, 9002U], vm.ForwardListen);
        Assert.Null(vm.UdsPath);
    }

    [Fact]
    public void Defaults_apply_to_a_minimal_vm()
    {
        VmSettings vm = Assert.Single(Cli.Vms("--vm", "socket=/tmp/s,uds-path=/tmp/u"));

        Assert.Equal(VmSettings.DefaultGuestCid, vm.GuestCid);
        Assert.Equal(VmSettings.DefaultTxBufferSize, vm.TxBufferSize);
        Assert.Equal(VmSettings.DefaultQueueSize, vm.QueueSize);
        Assert.Equal([VmSettings.DefaultGroup], vm.Groups);
    }

    [Fact]
    public void Each_vm_option_is_one_device_in_order()
    {
        IReadOnlyList<VmSettings> vms = Cli.Vms(
            "--vm", "guest-cid=5,socket=/tmp/s5,uds-path=/tmp/u5",
            "--vm", "guest-cid=3,socket=/tmp/s3,uds-path=/tmp/u3",
            "--vm", "guest-cid=4,socket=/tmp/s4,forward-cid=1");

        Assert.Equal([5UL, 3UL, 4UL], vms.Select(v => v.GuestCid));
    }

    [Fact]
    public void Surrounding_whitespace_of_the_value_is_trimmed()
    {
        Assert.Equal(4UL, Assert.Single(Cli.Vms("--vm", "  guest-cid=4,socket=/tmp/s,uds-path=/tmp/u  ")).GuestCid);
    }

    [Fact]
    public void Key_order_does_not_matter()
    {
        VmSettings vm = Assert.Single(Cli.Vms("--vm", "groups=g,uds-path=/tmp/u,socket=/tmp/s,guest-cid=9"));

        Assert.Equal(9UL, vm.GuestCid);
        Assert.Equal(["g"], vm.Groups);
    }
}
