namespace Vsock.Launcher.Tests.Configuration;

/// <summary>Rules about a device as a whole (its backend, its socket) and across devices.</summary>
public class DeviceRuleTests
{
    [Fact]
    public void Missing_socket_is_refused_on_flags()
    {
        Assert.Equal("missing --socket (the vhost-user socket to listen on for the VMM)", Cli.Error("--uds-path", "/tmp/u"));
    }

    [Fact]
    public void Missing_socket_is_refused_in_vm()
    {
        Assert.Equal(
            "--vm guest-cid=4,uds-path=/tmp/u: missing socket (the vhost-user socket to listen on for the VMM)",
            Cli.Error("--vm", "guest-cid=4,uds-path=/tmp/u"));
    }

    [Fact]
    public void Neither_backend_is_refused()
    {
        Assert.Equal("missing --uds-path or --forward-cid (a device needs one backend)", Cli.Error("--socket", "/tmp/s"));
        Assert.Equal(
            "--vm socket=/tmp/s,guest-cid=4: missing uds-path or forward-cid (a device needs one backend)",
            Cli.Error("--vm", "socket=/tmp/s,guest-cid=4"));
    }

    [Fact]
    public void Both_backends_are_refused()
    {
        Assert.Equal(
            "--uds-path and --forward-cid cannot both be given (a device has one backend)",
            Cli.Error("--socket", "/tmp/s", "--uds-path", "/tmp/u", "--forward-cid", "1"));
        Assert.Equal(
            "--vm socket=/tmp/s,uds_path=/tmp/u,forward_cid=1: uds-path and forward-cid cannot both be given (a device has one backend)",
            Cli.Error("--vm", "socket=/tmp/s,uds_path=/tmp/u,forward_cid=1"));
    }

    [Fact]
    public void Forward_listen_with_uds_path_is_refused()
    {
        // The reference silently ignores forward-listen here.
        Assert.Equal(
            "--forward-listen belongs to the vsock backend (--forward-cid); it cannot be used with --uds-path",
            Cli.Error("--socket", "/tmp/s", "--uds-path", "/tmp/u", "--forward-listen", "9001"));
        Assert.Contains(
            "forward-listen belongs to the vsock backend (forward-cid); it cannot be used with uds-path",
            Cli.Error("--vm", "socket=/tmp/s,uds-path=/tmp/u,forward-listen=9001"));
    }

    [Fact]
    public void Duplicate_guest_cid_across_vms_is_refused()
    {
        Assert.Equal(
            "--vm guest_cid=5,socket=/tmp/s2,uds-path=/tmp/u2: guest CID 5 is already used by --vm #1",
            Cli.Error("--vm", "guest-cid=5,socket=/tmp/s1,uds-path=/tmp/u1", "--vm", "guest_cid=5,socket=/tmp/s2,uds-path=/tmp/u2"));
    }

    [Fact]
    public void Default_guest_cid_counts_as_used()
    {
        Assert.Contains(
            "guest CID 3 is already used by --vm #1",
            Cli.Error("--vm", "socket=/tmp/s1,uds-path=/tmp/u1", "--vm", "guest-cid=3,socket=/tmp/s2,uds-path=/tmp/u2"));
    }

    [Fact]
    public void Duplicate_socket_path_across_vms_is_refused()
    {
        Assert.Equal(
            "--vm guest-cid=4,socket=/tmp/s,uds-path=/tmp/u2: socket /tmp/s is already used as the socket of --vm #1",
            Cli.Error("--vm", "guest-cid=3,socket=/tmp/s,uds-path=/tmp/u1", "--vm", "guest-cid=4,socket=/tmp/s,uds-path=/tmp/u2"));
    }

    [Fact]
    public void Duplicate_uds_path_across_vms_is_refused()
    {
        Assert.Contains(
            "uds-path /tmp/u is already used as the uds-path of --vm #1",
            Cli.Error("--vm", "guest-cid=3,socket=/tmp/s1,uds-path=/tmp/u", "--vm", "guest-cid=4,socket=/tmp/s2,uds-path=/tmp/u"));
    }

    [Fact]
    public void Same_file_spelled_differently_is_one_path()
    {
        Assert.Contains(
            "uds-path /tmp/./u is already used as the uds-path of --vm #1",
            Cli.Error("--vm", "guest-cid=3,socket=/tmp/s1,uds-path=/tmp/u", "--vm", "guest-cid=4,socket=/tmp/s2,uds-path=/tmp/./u"));
    }

    [Fact]
    public void A_socket_cannot_be_another_vms_uds_path()
    {
        Assert.Contains(
            "socket /tmp/x is already used as the uds-path of --vm #1",
            Cli.Error("--vm", "guest-cid=3,socket=/tmp/s1,uds-path=/tmp/x", "--vm", "guest-cid=4,socket=/tmp/x,uds-path=/tmp/u2"));
    }

    [Fact]
    public void A_vms_socket_cannot_be_its_own_uds_path()
    {
        Assert.Equal("--uds-path /tmp/x is already used as the --socket of this VM", Cli.Error("--socket", "/tmp/x", "--uds-path", "/tmp/x"));
    }

    [Fact]
    public void Forward_listen_port_used_by_two_vms_is_refused()
    {
        Assert.Contains(
            "forward-listen port 9002 is already used by --vm #1 (both would listen on it on the host)",
            Cli.Error(
                "--vm", "guest-cid=3,socket=/tmp/s1,forward-cid=1,forward-listen=9001+9002",
                "--vm", "guest-cid=4,socket=/tmp/s2,forward-cid=1,forward-listen=9002"));
    }

    [Fact]
    public void Distinct_devices_are_accepted_together()
    {
        Assert.Equal(3, Cli.Vms(
            "--vm", "guest-cid=3,socket=/tmp/s1,forward-cid=1,forward-listen=9001",
            "--vm", "guest-cid=4,socket=/tmp/s2,forward-cid=1,forward-listen=9002",
            "--vm", "guest-cid=5,socket=/tmp/s3,uds-path=/tmp/u3").Count);
    }
}
