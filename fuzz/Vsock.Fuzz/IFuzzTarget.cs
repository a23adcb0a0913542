namespace Vsock.Fuzz;

/// <summary>
/// One fuzz target: a decoder from arbitrary bytes to calls on the code under test, with the invariants checked
/// after each call. The same object serves AFL++ (Program, instrumented build) and the in-process tests.
/// </summary>
internal interface IFuzzTarget
{
    /// <summary>The name on the command line and the corpus folder (fuzz/corpus/NAME).</summary>
    string Name { get; }

    /// <summary>
    /// Runs one input. Returns a short label of how far it got (for the tests and the replay command); throws
    /// <see cref="InvariantViolationException"/> when the code under test misbehaved. Must leave no state behind
    /// (AFL++ runs many inputs in one process) and release every fd and allocation it made.
    /// </summary>
    string Run(ReadOnlySpan<byte> input);

    /// <summary>The seed corpus, built with the input format's own encoder: (file name, bytes).</summary>
    IEnumerable<(string Name, byte[] Input)> Seeds();
}

internal static class FuzzTargets
{
    public static IReadOnlyList<IFuzzTarget> All { get; } =
    [
        new Targets.VhostUser.VhostUserTarget(),
        new Targets.Virtqueue.VirtqueueTarget(),
        new Targets.Connect.ConnectLineTarget(),
        new Targets.Configuration.ConfigurationTarget(),
    ];

    public static IFuzzTarget? Find(string name) => All.FirstOrDefault(t => t.Name == name);
}
