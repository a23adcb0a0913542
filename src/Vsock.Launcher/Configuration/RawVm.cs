namespace Vsock.Launcher.Configuration;

/// <summary>
/// One value exactly as the user wrote it. <see cref="Where"/> prefixes any message about it:
/// <c>--guest-cid</c>, <c>--vm guest-cid=2,socket=...</c>, or <c>file.yaml:4:16: vms[0].guest_cid</c>.
/// </summary>
/// <param name="IsQuotedString">A YAML quoted or block scalar: a string by type, so not an integer.</param>
internal sealed record RawValue(string Text, string Where, bool IsQuotedString = false);

/// <summary>
/// One VM as a source described it, before any value is interpreted. All three sources (top-level
/// flags, <c>--vm</c>, YAML) produce this, so there is one interpretation and one set of rules.
/// </summary>
/// <param name="Where">Prefix for messages about the VM as a whole; empty for the top-level flags.</param>
/// <param name="Label">Short name another VM's message can point at: <c>--vm #1</c>, <c>vms[0] (line 2)</c>.</param>
internal sealed class RawVm(string where, string label, KeyStyle style)
{
    public string Where { get; } = where;
    public string Label { get; } = label;
    public KeyStyle Style { get; } = style;
    public Dictionary<VmKey, RawValue> Values { get; } = [];

    public string Name(VmKey key) => VmKeys.Name(key, Style);

    public ConfigurationException Error(string problem) =>
        new(Where.Length == 0 ? problem : $"{Where}: {problem}");

    public static ConfigurationException Error(RawValue value, string problem) => new($"{value.Where}: {problem}");
}
