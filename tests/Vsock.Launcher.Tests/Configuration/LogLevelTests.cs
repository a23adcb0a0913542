using Microsoft.Extensions.Logging;
using Vsock.Launcher.Configuration;

namespace Vsock.Launcher.Tests.Configuration;

public class LogLevelTests
{
    private static readonly string[] Device = ["--socket", "/tmp/s", "--uds-path", "/tmp/u"];

    private static LaunchOptions Parse(Dictionary<string, string> environment, params string[] args) =>
        LauncherConfiguration.Parse([.. Device, .. args], name => environment.GetValueOrDefault(name));

    [Fact]
    public void Default_is_information()
    {
        Assert.Equal(LogLevel.Information, Parse([]).LogLevel);
    }

    [Theory]
    [InlineData("trace", LogLevel.Trace)]
    [InlineData("debug", LogLevel.Debug)]
    [InlineData("info", LogLevel.Information)]
    [InlineData("warn", LogLevel.Warning)]
    [InlineData("error", LogLevel.Error)]
    [InlineData("off", LogLevel.None)]
    [InlineData("DEBUG", LogLevel.Debug)]
    public void Flag_sets_the_level(string word, LogLevel expected)
    {
        Assert.Equal(expected, Parse([], "--log-level", word).LogLevel);
    }

    [Theory]
    [InlineData("verbose")]
    [InlineData("warning")]
    [InlineData("")]
    public void Unknown_flag_word_is_refused(string word)
    {
        var e = Assert.Throws<ConfigurationException>(() => Parse([], "--log-level", word));

        Assert.Equal($"--log-level: '{word}' is not one of trace, debug, info, warn, error or off", e.Message);
    }

    [Fact]
    public void Own_variable_sets_the_level()
    {
        Assert.Equal(LogLevel.Debug, Parse(new() { ["VHOST_DEVICE_VSOCK_LOG"] = "debug" }).LogLevel);
    }

    [Fact]
    public void Unknown_own_variable_word_is_refused()
    {
        var e = Assert.Throws<ConfigurationException>(() => Parse(new() { ["VHOST_DEVICE_VSOCK_LOG"] = "loud" }));

        Assert.StartsWith("VHOST_DEVICE_VSOCK_LOG: 'loud' is not one of", e.Message);
    }

    [Fact]
    public void Flag_beats_own_variable_beats_rust_log()
    {
        var both = new Dictionary<string, string> { ["VHOST_DEVICE_VSOCK_LOG"] = "warn", ["RUST_LOG"] = "trace" };

        Assert.Equal(LogLevel.Error, Parse(both, "--log-level", "error").LogLevel);
        Assert.Equal(LogLevel.Warning, Parse(both).LogLevel);
        Assert.Equal(LogLevel.Trace, Parse(new() { ["RUST_LOG"] = "trace" }).LogLevel);
    }

    [Fact]
    public void Blank_variables_count_as_unset()
    {
        Assert.Equal(LogLevel.Information, Parse(new() { ["VHOST_DEVICE_VSOCK_LOG"] = " ", ["RUST_LOG"] = "" }).LogLevel);
    }

    [Theory]
    [InlineData("debug", LogLevel.Debug)]
    [InlineData("Warn", LogLevel.Warning)]
    [InlineData("vhost_device_vsock=trace", LogLevel.Trace)]
    [InlineData("warn,vhost_device_vsock=debug", LogLevel.Debug)]
    [InlineData("vhost_device_vsock=error,debug", LogLevel.Error)]
    [InlineData("vhost_device_vsock::vhu_vsock=debug", LogLevel.Debug)]
    [InlineData("vhost_device_vsock", LogLevel.Trace)]
    [InlineData("vhost_user_backend=trace", LogLevel.Information)]
    [InlineData("info/CONNECT", LogLevel.Information)]
    [InlineData("off", LogLevel.None)]
    public void Rust_log_is_read_like_env_logger(string spec, LogLevel expected)
    {
        LaunchOptions options = Parse(new() { ["RUST_LOG"] = spec });

        Assert.Equal(expected, options.LogLevel);
        Assert.Empty(options.Warnings);
    }

    [Fact]
    public void Unreadable_rust_log_directive_is_skipped_with_a_warning()
    {
        LaunchOptions options = Parse(new() { ["RUST_LOG"] = "debug,vhost_device_vsock=chatty" });

        Assert.Equal(LogLevel.Debug, options.LogLevel);
        Assert.Equal("RUST_LOG: ignoring 'vhost_device_vsock=chatty' ('chatty' is not one of trace, debug, info, warn, error or off)", Assert.Single(options.Warnings));
    }
}
