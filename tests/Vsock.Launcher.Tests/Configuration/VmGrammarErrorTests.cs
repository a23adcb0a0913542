namespace Vsock.Launcher.Tests.Configuration;

public class VmGrammarErrorTests
{
    [Fact]
    public void Unknown_key_is_refused_and_the_keys_are_listed()
    {
        Assert.Equal(
            "--vm socket=/tmp/s,uds-path=/tmp/u,colour=red: unknown key 'colour' (expected one of guest-cid, socket, uds-path, " +
            "forward-cid, forward-listen, tx-buffer-size, queue-size, groups, max-connections, close-timeout-ms, forward-listen-seqpacket)",
            Cli.Error("--vm", "socket=/tmp/s,uds-path=/tmp/u,colour=red"));
    }

    [Fact]
    public void The_man_pages_group_key_gets_a_hint()
    {
        Assert.Contains("unknown key 'group' (did you mean groups?)", Cli.Error("--vm", "socket=/tmp/s,uds-path=/tmp/u,group=g1"));
    }

    [Fact]
    public void Keys_are_case_sensitive()
    {
        Assert.Contains("unknown key 'Socket'", Cli.Error("--vm", "Socket=/tmp/s,uds-path=/tmp/u"));
    }

    [Fact]
    public void Item_without_equals_is_refused()
    {
        Assert.Equal(
            "--vm socket=/tmp/s,uds-path: item 'uds-path' is not key=value",
            Cli.Error("--vm", "socket=/tmp/s,uds-path"));
    }

    [Fact]
    public void Item_with_a_second_equals_is_refused()
    {
        // The reference drops "=b" silently and uses /tmp/a as the path.
        Assert.Equal(
            "--vm socket=/tmp/a=b,uds-path=/tmp/u: item 'socket=/tmp/a=b' has more than one '='",
            Cli.Error("--vm", "socket=/tmp/a=b,uds-path=/tmp/u"));
    }

    [Theory]
    [InlineData("socket=/tmp/s,,uds-path=/tmp/u")]
    [InlineData("socket=/tmp/s,uds-path=/tmp/u,")]
    [InlineData(",socket=/tmp/s,uds-path=/tmp/u")]
    public void Empty_item_is_refused(string value)
    {
        Assert.Contains("empty item", Cli.Error("--vm", value));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void Empty_vm_is_refused(string value)
    {
        Assert.Equal("--vm: empty value (expected key=value,key=value,...)", Cli.Error("--vm", value));
    }

    [Fact]
    public void Empty_value_is_refused()
    {
        Assert.Equal("--vm socket=,uds-path=/tmp/u: socket has an empty value", Cli.Error("--vm", "socket=,uds-path=/tmp/u"));
    }

    [Theory]
    [InlineData("guest-cid=4,guest-cid=5,socket=/tmp/s,uds-path=/tmp/u")]
    [InlineData("guest-cid=4,guest_cid=5,socket=/tmp/s,uds-path=/tmp/u")]
    public void Key_given_twice_is_refused_in_either_spelling(string value)
    {
        Assert.Equal($"--vm {value}: guest-cid is given more than once", Cli.Error("--vm", value));
    }

    [Fact]
    public void Whitespace_around_a_key_makes_it_unknown()
    {
        Assert.Contains("unknown key 'guest-cid '", Cli.Error("--vm", "guest-cid =4,socket=/tmp/s,uds-path=/tmp/u"));
    }
}
