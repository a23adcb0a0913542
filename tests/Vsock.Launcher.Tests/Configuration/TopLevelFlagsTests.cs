using Vsock.Actors.Settings;

namespace Vsock.Launcher.Tests.Configuration;

public class TopLevelFlagsTests
{
    [Fact]
    public void Unix_backend_takes_every_default()
    {
        VmSettings vm = Assert.Single(Cli.Vms("--socket", "/tmp/vhost.socket", "--uds-path", "/tmp/vm.vsock"));

        Assert.Equal(3UL, vm.GuestCid);
        Assert.Equal("/tmp/vhost.socket", vm.Socket);
        Assert.Equal("/tmp/vm.vsock", vm.UdsPath);
        Assert.Null(vm.ForwardCid);
        Assert.Empty(vm.ForwardListen);
        Assert.Equal(65536U, vm.TxBufferSize);
        Assert.Equal(1024, vm.QueueSize);
        Assert.Equal(["default"], vm.Groups);
    }

    [Fact]
    public void Every_unix_flag_is_read()
    {
        VmSettings vm = Assert.Single(Cli.Vms(
            "--guest-cid", "7", "--socket", "/tmp/s", "--uds-path", "/tmp/u",
            "--tx-buffer-size", "32768", "--queue-size", "256", "--groups", "group1+group2"));

        Assert.Equal(7UL, vm.GuestCid);
        Assert.Equal(32768U, vm.TxBufferSize);
        Assert.Equal(256, vm.QueueSize);
        Assert.Equal(["group1", "group2"], vm.Groups);
    }

    [Fact]
    public void Vsock_backend_flags_are_read()
    {
        VmSettings vm = Assert.Single(Cli.Vms("--socket", "/tmp/s", "--forward-cid", "1", "--forward-listen", "9001+9002"));

        Assert.Null(vm.UdsPath);
        Assert.Equal(1U, vm.ForwardCid);
        Assert.Equal([9001U, 9002U], vm.ForwardListen);
    }

    [Fact]
    public void Vsock_backend_without_forward_listen_listens_on_nothing()
    {
        VmSettings vm = Assert.Single(Cli.Vms("--socket", "/tmp/s", "--forward-cid", "2"));

        Assert.Equal(2U, vm.ForwardCid);
        Assert.Empty(vm.ForwardListen);
    }

    [Fact]
    public void Equals_sign_form_is_accepted()
    {
        VmSettings vm = Assert.Single(Cli.Vms("--guest-cid=5", "--socket=/tmp/s", "--uds-path=/tmp/u", "--queue-size=512"));

        Assert.Equal(5UL, vm.GuestCid);
        Assert.Equal(512, vm.QueueSize);
    }

    [Fact]
    public void Groups_are_trimmed_per_element_and_counted_once()
    {
        VmSettings vm = Assert.Single(Cli.Vms("--socket", "/tmp/s", "--uds-path", "/tmp/u", "--groups", " group1 + group2+group1 "));

        Assert.Equal(["group1", "group2"], vm.Groups);
    }

    [Fact]
    public void Paths_are_trimmed_like_the_reference()
    {
        VmSettings vm = Assert.Single(Cli.Vms("--socket", " /tmp/s ", "--uds-path", "/tmp/u "));

        Assert.Equal("/tmp/s", vm.Socket);
        Assert.Equal("/tmp/u", vm.UdsPath);
    }

    [Fact]
    public void A_path_starting_with_at_is_a_path_not_a_response_file()
    {
        VmSettings vm = Assert.Single(Cli.Vms("--socket", "@vhost.socket", "--uds-path", "/tmp/u"));

        Assert.Equal("@vhost.socket", vm.Socket);
    }

    [Fact]
    public void Largest_allowed_values_are_accepted()
    {
        VmSettings vm = Assert.Single(Cli.Vms(
            "--guest-cid", "4294967294", "--socket", "/tmp/s", "--forward-cid", "4294967294",
            "--forward-listen", "0+4294967294", "--tx-buffer-size", "67108864", "--queue-size", "32768"));

        Assert.Equal(4294967294UL, vm.GuestCid);
        Assert.Equal(4294967294U, vm.ForwardCid);
        Assert.Equal([0U, 4294967294U], vm.ForwardListen);
        Assert.Equal(64U * 1024 * 1024, vm.TxBufferSize);
        Assert.Equal(32768, vm.QueueSize);
    }

    [Theory]
    [InlineData("1")]
    [InlineData("2")]
    [InlineData("64")]
    [InlineData("4096")]
    [InlineData("32768")]
    public void Queue_sizes_that_are_powers_of_two_are_accepted(string size)
    {
        VmSettings vm = Assert.Single(Cli.Vms("--socket", "/tmp/s", "--uds-path", "/tmp/u", "--queue-size", size));

        Assert.Equal(int.Parse(size, System.Globalization.CultureInfo.InvariantCulture), vm.QueueSize);
    }

    [Fact]
    public void Smallest_tx_buffer_is_accepted()
    {
        Assert.Equal(1U, Assert.Single(Cli.Vms("--socket", "/tmp/s", "--uds-path", "/tmp/u", "--tx-buffer-size", "1")).TxBufferSize);
    }

    [Fact]
    public void No_help_or_version_text_when_running()
    {
        Assert.Null(Cli.Parse("--socket", "/tmp/s", "--uds-path", "/tmp/u").InformationText);
    }
}
