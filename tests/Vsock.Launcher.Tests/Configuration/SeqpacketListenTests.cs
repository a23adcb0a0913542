using Vsock.Actors.Settings;

namespace Vsock.Launcher.Tests.Configuration;

/// <summary>
/// <c>forward-listen-seqpacket</c>: the vsock backend's SOCK_SEQPACKET listening ports (issue 12). Same rules as
/// <c>forward-listen</c>, and the two share the host's vsock port numbers.
/// </summary>
public class SeqpacketListenTests
{
    [Fact]
    public void The_flag_the_vm_key_and_the_yaml_key_are_read()
    {
        VmSettings flags = Assert.Single(Cli.Vms("--socket", "/tmp/s", "--forward-cid", "1", "--forward-listen", "9001",
            "--forward-listen-seqpacket", "9002+9003"));
        Assert.Equal([9001U], flags.ForwardListen);
        Assert.Equal([9002U, 9003U], flags.ForwardListenSeqpacket);

        VmSettings vm = Assert.Single(Cli.Vms("--vm", "socket=/tmp/s,forward-cid=1,forward_listen_seqpacket=9002"));
        Assert.Equal([9002U], vm.ForwardListenSeqpacket);
        Assert.Empty(vm.ForwardListen);
    }

    [Fact]
    public void Without_it_nothing_listens_for_seqpacket()
    {
        VmSettings vm = Assert.Single(Cli.Vms("--socket", "/tmp/s", "--forward-cid", "1", "--forward-listen", "9001"));
        Assert.Empty(vm.ForwardListenSeqpacket);
    }

    [Fact]
    public void It_belongs_to_the_vsock_backend()
    {
        Assert.Equal(
            "--forward-listen-seqpacket belongs to the vsock backend (--forward-cid); it cannot be used with --uds-path",
            Cli.Error("--socket", "/tmp/s", "--uds-path", "/tmp/u", "--forward-listen-seqpacket", "9001"));
    }

    [Fact]
    public void A_port_is_listened_on_once_whatever_its_socket_type()
    {
        Assert.Contains(
            "forward-listen-seqpacket port 9001 is already used by this VM (both would listen on it on the host)",
            Cli.Error("--vm", "socket=/tmp/s1,forward-cid=1,forward-listen=9001,forward-listen-seqpacket=9001"));
        Assert.Contains(
            "forward-listen-seqpacket port 9002 is already used by --vm #1 (both would listen on it on the host)",
            Cli.Error("--vm", "guest-cid=3,socket=/tmp/s1,forward-cid=1,forward-listen=9002",
                "--vm", "guest-cid=4,socket=/tmp/s2,forward-cid=1,forward-listen-seqpacket=9002"));
        Assert.Contains("port 9004 is listed twice", Cli.Error("--vm", "socket=/tmp/s1,forward-cid=1,forward-listen-seqpacket=9004+9004"));
    }
}
