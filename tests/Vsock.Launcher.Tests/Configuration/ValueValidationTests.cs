namespace Vsock.Launcher.Tests.Configuration;

/// <summary>Every refused value, through each source that can carry it; the message must name the problem and where.</summary>
public class ValueValidationTests
{
    private static string VmError(string settings) => Cli.Error("--vm", settings);

    [Theory]
    [InlineData("0")]
    [InlineData("1")]
    [InlineData("2")]
    [InlineData("4294967295")]
    public void Reserved_guest_cid_is_refused_on_the_flag(string cid)
    {
        Assert.Equal(
            $"--guest-cid: guest CID {cid} is reserved (0, 1, 2 and 4294967295 cannot be used)",
            Cli.Error("--guest-cid", cid, "--socket", "/tmp/s", "--uds-path", "/tmp/u"));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("2")]
    [InlineData("4294967295")]
    public void Reserved_guest_cid_is_refused_in_vm(string cid)
    {
        Assert.Equal(
            $"--vm guest-cid={cid},socket=/tmp/s,uds-path=/tmp/u: guest-cid: guest CID {cid} is reserved (0, 1, 2 and 4294967295 cannot be used)",
            VmError($"guest-cid={cid},socket=/tmp/s,uds-path=/tmp/u"));
    }

    [Theory]
    [InlineData("4294967296")]
    [InlineData("18446744073709551615")]
    public void Guest_cid_above_32_bits_is_refused(string cid)
    {
        string message = Cli.Error("--guest-cid", cid, "--socket", "/tmp/s", "--uds-path", "/tmp/u");

        Assert.StartsWith($"--guest-cid: guest CID {cid} is reserved", message);
        Assert.Contains("upper 32 bits", message);
    }

    [Theory]
    [InlineData("abc", "'abc' is not an unsigned integer")]
    [InlineData("-3", "'-3' is not an unsigned integer")]
    [InlineData("0x10", "'0x10' is not an unsigned integer")]
    [InlineData("", "'' is not an unsigned integer")]
    [InlineData("18446744073709551616", "'18446744073709551616' is too large")]
    public void Guest_cid_that_is_not_a_u64_is_refused(string cid, string problem)
    {
        Assert.Equal($"--guest-cid: {problem}", Cli.Error("--guest-cid", cid, "--socket", "/tmp/s", "--uds-path", "/tmp/u"));
    }

    [Fact]
    public void Non_numeric_value_in_vm_names_the_key()
    {
        Assert.Equal(
            "--vm guest_cid=four,socket=/tmp/s,uds-path=/tmp/u: guest_cid: 'four' is not an unsigned integer",
            VmError("guest_cid=four,socket=/tmp/s,uds-path=/tmp/u"));
    }

    [Theory]
    [InlineData("4294967295", "forward CID 4294967295 is VMADDR_CID_ANY")]
    [InlineData("4294967296", "forward CID 4294967296 does not fit in 32 bits")]
    [InlineData("one", "'one' is not an unsigned integer")]
    public void Bad_forward_cid_is_refused(string cid, string problem)
    {
        Assert.Contains($"--forward-cid: {problem}", Cli.Error("--socket", "/tmp/s", "--forward-cid", cid));
    }

    [Theory]
    [InlineData("", "empty port in '' (ports are joined by '+')")]
    [InlineData("9001+", "empty port in '9001+'")]
    [InlineData("+9001", "empty port in '+9001'")]
    [InlineData("9001++9002", "empty port in '9001++9002'")]
    [InlineData("90a1", "'90a1' is not an unsigned integer")]
    [InlineData("9001+x", "'x' is not an unsigned integer")]
    [InlineData("-1", "'-1' is not an unsigned integer")]
    [InlineData("9001+4294967296", "port 4294967296 does not fit in 32 bits")]
    [InlineData("4294967295", "port 4294967295 is VMADDR_PORT_ANY")]
    [InlineData("9001+9002+9001", "port 9001 is listed twice")]
    public void Bad_port_list_is_refused(string ports, string problem)
    {
        Assert.Contains($"--forward-listen: {problem}", Cli.Error("--socket", "/tmp/s", "--forward-cid", "1", "--forward-listen", ports));
    }

    [Fact]
    public void Bad_port_list_in_vm_names_the_vm()
    {
        Assert.Equal(
            "--vm socket=/tmp/s,forward-cid=1,forward-listen=9001+: forward-listen: empty port in '9001+' (ports are joined by '+')",
            VmError("socket=/tmp/s,forward-cid=1,forward-listen=9001+"));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("3")]
    [InlineData("1000")]
    [InlineData("32769")]
    [InlineData("65536")]
    [InlineData("4294967296")]
    public void Queue_size_not_a_power_of_two_up_to_32768_is_refused(string size)
    {
        Assert.Equal(
            $"--queue-size: queue size {size} must be a power of two from 1 to 32768",
            Cli.Error("--socket", "/tmp/s", "--uds-path", "/tmp/u", "--queue-size", size));
    }

    [Theory]
    [InlineData("0", "tx buffer size 0 is too small (at least 1 byte)")]
    [InlineData("67108865", "tx buffer size 67108865 is larger than 67108864 (64 MiB)")]
    [InlineData("4294967296", "tx buffer size 4294967296 is larger than 67108864 (64 MiB)")]
    public void Tx_buffer_size_zero_or_above_64_mib_is_refused(string size, string problem)
    {
        Assert.Equal($"--tx-buffer-size: {problem}", Cli.Error("--socket", "/tmp/s", "--uds-path", "/tmp/u", "--tx-buffer-size", size));
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("a++b")]
    [InlineData("a+")]
    [InlineData("+a")]
    [InlineData("a+ +b")]
    public void Blank_group_name_is_refused(string groups)
    {
        Assert.Contains("--groups: empty group name", Cli.Error("--socket", "/tmp/s", "--uds-path", "/tmp/u", "--groups", groups));
    }

    [Fact]
    public void Blank_group_name_in_vm_is_refused()
    {
        Assert.Contains("groups: empty group name in 'g1++g2'", VmError("socket=/tmp/s,uds-path=/tmp/u,groups=g1++g2"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void Empty_socket_path_is_refused(string path)
    {
        Assert.Equal("--socket: empty path", Cli.Error("--socket", path, "--uds-path", "/tmp/u"));
    }

    [Fact]
    public void Empty_uds_path_is_refused()
    {
        Assert.Equal("--uds-path: empty path", Cli.Error("--socket", "/tmp/s", "--uds-path", ""));
    }

    [Fact]
    public void Socket_path_longer_than_sun_path_is_refused()
    {
        string path = "/tmp/" + new string('s', 103); // 108 bytes: one more than sun_path holds with its NUL

        string message = Cli.Error("--socket", path, "--uds-path", "/tmp/u");

        Assert.Equal($"--socket: path '{path}' is 108 bytes long; a unix socket path can have at most 107", message);
    }

    [Fact]
    public void Socket_path_of_exactly_107_bytes_is_accepted()
    {
        string path = "/tmp/" + new string('s', 102);

        Assert.Equal(path, Assert.Single(Cli.Vms("--socket", path, "--uds-path", "/tmp/u")).Socket);
    }

    [Fact]
    public void Path_with_nul_is_refused()
    {
        Assert.Equal("--uds-path: path contains a NUL character", Cli.Error("--socket", "/tmp/s", "--uds-path", "/tmp/a\0b"));
    }
}
