namespace Vsock.Launcher.Configuration;

/// <summary>
/// The <c>--vm key=value,key=value,...</c> grammar: the value is trimmed, split on <c>,</c>, and
/// every item must be exactly one <c>key=value</c>. Where the reference is lenient we refuse:
/// a second <c>=</c> (the reference silently drops what follows it), an empty item, an empty
/// value, and a key given twice (the reference keeps the last) are errors.
/// </summary>
internal static class VmArgumentParser
{
    /// <param name="text">One <c>--vm</c> value.</param>
    /// <param name="ordinal">1-based position among the <c>--vm</c> options, for cross-VM messages.</param>
    public static RawVm Parse(string text, int ordinal)
    {
        string trimmed = text.Trim();
        var vm = new RawVm($"--vm {trimmed}", $"--vm #{ordinal}", KeyStyle.VmArgument);
        if (trimmed.Length == 0)
        {
            throw new ConfigurationException("--vm: empty value (expected key=value,key=value,...)");
        }

        foreach (string item in trimmed.Split(','))
        {
            if (item.Length == 0)
            {
                throw vm.Error("empty item (two commas in a row, or a leading or trailing comma)");
            }

            int equals = item.IndexOf('=');
            if (equals < 0)
            {
                throw vm.Error($"item '{item}' is not key=value");
            }

            if (item.IndexOf('=', equals + 1) >= 0)
            {
                throw vm.Error($"item '{item}' has more than one '='");
            }

            string key = item[..equals];
            string value = item[(equals + 1)..];
            if (!VmKeys.TryParse(key, out VmKey parsed))
            {
                throw vm.Error(
                    $"unknown key '{key}'{VmKeys.Suggestion(key, KeyStyle.VmArgument)} " +
                    $"(expected one of {VmKeys.List(KeyStyle.VmArgument)})");
            }

            if (vm.Values.ContainsKey(parsed))
            {
                throw vm.Error($"{vm.Name(parsed)} is given more than once");
            }

            if (value.Length == 0)
            {
                throw vm.Error($"{key} has an empty value");
            }

            vm.Values[parsed] = new RawValue(value, $"{vm.Where}: {key}");
        }

        return vm;
    }
}
