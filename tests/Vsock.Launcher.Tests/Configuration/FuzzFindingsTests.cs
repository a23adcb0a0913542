namespace Vsock.Launcher.Tests.Configuration;

/// <summary>
/// What the configuration fuzz target (scripts/fuzz.sh config) found: exceptions other than a configuration
/// error escaping the YAML loader (the launcher then died with a stack trace), and error messages that were not
/// one line because they quoted user text with line breaks in it.
/// </summary>
public sealed class FuzzFindingsTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("!<+> x\n")] // YamlDotNet: ArgumentException "Global tags must be valid URIs"
    [InlineData("!!+-\n")]
    [InlineData("\t:\t\u0001\n")] // YamlDotNet: ArgumentException "The current event is of an unsupported type"
    public void Yaml_that_makes_YamlDotNet_throw_ArgumentException_is_a_configuration_error(string yaml)
    {
        string path = _dir.Write("c.yaml", yaml);

        Assert.Contains(": malformed YAML: ", Cli.Error("--config", path));
    }

    [Fact]
    public void Unknown_argument_with_a_line_break_gives_a_one_line_error()
    {
        Assert.Contains("'--bad\\nline'", Cli.Error("--bad\nline"));
    }

    [Fact]
    public void Vm_value_with_line_breaks_gives_a_one_line_error()
    {
        Assert.Contains("guest-cid=3\\r\\nsocket", Cli.Error("--vm", "guest-cid=3\r\nsocket=/tmp/s"));
    }

    [Fact]
    public void Yaml_key_with_a_line_break_gives_a_one_line_error()
    {
        string path = _dir.Write("c.yaml", "\"a\\nb\\u2028c\": 1\n");

        Assert.Contains("unknown top-level key 'a\\nb\\u2028c'", Cli.Error("--config", path));
    }
}
