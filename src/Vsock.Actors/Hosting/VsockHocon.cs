namespace Vsock.Actors.Hosting;

/// <summary>
/// The dispatcher definitions (<c>hocon/vsock.hocon</c>). The file is embedded in this assembly, so a
/// single-file binary needs nothing beside it; a file at <see cref="VsockHostingExtensions.HoconPath"/>
/// (<c>hocon/vsock.hocon</c> next to the application, as the framework-dependent build has it) overrides
/// the embedded copy, to tune a dispatcher without rebuilding.
/// </summary>
public static class VsockHocon
{
    public const string ResourceName = "Vsock.Actors.hocon.vsock.hocon";

    /// <summary>The file next to the application if there is one, else the embedded copy.</summary>
    public static string Read() =>
        File.Exists(VsockHostingExtensions.HoconPath) ? File.ReadAllText(VsockHostingExtensions.HoconPath) : Embedded();

    public static string Embedded()
    {
        using var stream = typeof(VsockHocon).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"{ResourceName} is not embedded in {typeof(VsockHocon).Assembly.GetName().Name}");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
