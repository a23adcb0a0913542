namespace Vsock.Launcher.Configuration;

/// <summary>
/// The command line, the environment or the YAML file does not describe a usable set of devices.
/// <see cref="Exception.Message"/> is one line that names the problem and where it is (the flag,
/// the <c>--vm</c> value, or <c>file:line:column</c>); the launcher prints it as <c>error: ...</c>
/// and exits with status 1.
/// </summary>
public sealed class ConfigurationException(string message) : Exception(message)
{
}
