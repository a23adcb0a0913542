using Vsock.Launcher;
using Vsock.Launcher.Configuration;

LaunchOptions options;
try
{
    options = LauncherConfiguration.Parse(args);
}
catch (ConfigurationException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

if (options.InformationText is not null)
{
    Console.Out.Write(options.InformationText);
    return 0;
}

// From here on stdout carries nothing: Akka.Hosting prints a failed start with Console.WriteLine,
// and a daemon's diagnostics belong with its logs on stderr.
Console.SetOut(Console.Error);
using RuntimeStatisticsFile? statistics = RuntimeStatisticsFile.FromEnvironment(Environment.GetEnvironmentVariable);
int exitCode = await LauncherHost.RunAsync(options);
statistics?.Write();
return exitCode;
