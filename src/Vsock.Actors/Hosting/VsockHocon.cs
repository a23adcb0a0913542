namespace Vsock.Actors.Hosting;

/// <summary>
/// The HOCON files of <c>hocon/</c>: the dispatcher definitions (<see cref="Dispatchers"/>) and the cluster
/// settings (<see cref="Cluster"/>). Both are embedded in this assembly, so a single-file binary needs nothing
/// beside it; a file of the same name in <c>hocon/</c> next to the application (as the framework-dependent build
/// has it) overrides the embedded copy, to tune a setting without rebuilding.
/// </summary>
public static class VsockHocon
{
    /// <summary>The per-VM dispatcher template and the connection mailbox.</summary>
    public const string Dispatchers = "vsock.hocon";

    /// <summary>Failure detection, downing, Distributed Data and the serializer bindings of the messages that cross nodes.</summary>
    public const string Cluster = "vsock-cluster.hocon";

    /// <summary>Where <paramref name="file"/> is looked for next to the application (never the working directory).</summary>
    public static string PathOf(string file) => Path.Combine(AppContext.BaseDirectory, "hocon", file);

    /// <summary>The file next to the application if there is one, else the embedded copy.</summary>
    public static string Read(string file) => File.Exists(PathOf(file)) ? File.ReadAllText(PathOf(file)) : Embedded(file);

    public static string Embedded(string file)
    {
        var resource = "Vsock.Actors.hocon." + file;
        using var stream = typeof(VsockHocon).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"{resource} is not embedded in {typeof(VsockHocon).Assembly.GetName().Name}");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
