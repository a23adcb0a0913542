using Microsoft.Extensions.Logging;

namespace Vsock.Launcher.Configuration;

/// <summary>
/// The log level: <c>--log-level</c>, else <c>VHOST_DEVICE_VSOCK_LOG</c>, else <c>RUST_LOG</c>
/// (so a systemd unit written for the Rust binary keeps its verbosity), else Information.
/// Level words are env_logger's: trace, debug, info, warn, error, off (any case).
/// </summary>
internal static class LogLevelResolver
{
    public const string OwnVariable = "VHOST_DEVICE_VSOCK_LOG";
    public const string RustVariable = "RUST_LOG";
    public const LogLevel Default = LogLevel.Information;

    /// <summary>The crate name env_logger directives use for the reference binary.</summary>
    private const string RustTarget = "vhost_device_vsock";

    private const string Words = "trace, debug, info, warn, error or off";

    public static LogLevel Resolve(string? flag, Func<string, string?> environment, List<string> warnings)
    {
        if (flag is not null)
        {
            return TryParseWord(flag, out LogLevel level)
                ? level
                : throw new ConfigurationException($"--log-level: '{flag}' is not one of {Words}");
        }

        string? own = environment(OwnVariable);
        if (!string.IsNullOrWhiteSpace(own))
        {
            return TryParseWord(own.Trim(), out LogLevel level)
                ? level
                : throw new ConfigurationException($"{OwnVariable}: '{own}' is not one of {Words}");
        }

        string? rust = environment(RustVariable);
        return string.IsNullOrWhiteSpace(rust) ? Default : FromRustLog(rust, warnings);
    }

    public static bool TryParseWord(string word, out LogLevel level)
    {
        switch (word.ToLowerInvariant())
        {
            case "trace": level = LogLevel.Trace; return true;
            case "debug": level = LogLevel.Debug; return true;
            case "info": level = LogLevel.Information; return true;
            case "warn": level = LogLevel.Warning; return true;
            case "error": level = LogLevel.Error; return true;
            case "off": level = LogLevel.None; return true;
            default: level = Default; return false;
        }
    }

    /// <summary>
    /// env_logger's spec: comma-separated directives, each <c>level</c>, <c>target</c> or
    /// <c>target=level</c>, optionally followed by <c>/regex</c> (a message filter we do not apply).
    /// A directive for our crate wins over a bare level; other crates' directives do not concern us.
    /// Like env_logger, a directive that cannot be read is skipped with a warning, not fatal.
    /// </summary>
    internal static LogLevel FromRustLog(string spec, List<string> warnings)
    {
        string directives = spec.Split('/')[0];
        LogLevel? global = null;
        LogLevel? ours = null;
        foreach (string raw in directives.Split(','))
        {
            string directive = raw.Trim();
            if (directive.Length == 0)
            {
                continue;
            }

            int equals = directive.IndexOf('=');
            if (equals < 0)
            {
                if (TryParseWord(directive, out LogLevel level))
                {
                    global = level;
                }
                else if (IsOurTarget(directive))
                {
                    ours = LogLevel.Trace; // a bare target means "everything from it"
                }

                continue;
            }

            string target = directive[..equals].Trim();
            string word = directive[(equals + 1)..].Trim();
            if (!TryParseWord(word, out LogLevel targetLevel))
            {
                warnings.Add($"{RustVariable}: ignoring '{directive}' ('{word}' is not one of {Words})");
            }
            else if (IsOurTarget(target))
            {
                ours = targetLevel;
            }
        }

        return ours ?? global ?? Default;
    }

    private static bool IsOurTarget(string target) =>
        target == RustTarget || target.StartsWith(RustTarget + "::", StringComparison.Ordinal);
}
