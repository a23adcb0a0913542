namespace Vsock.Fuzz.Tests;

/// <summary>
/// Keeps the AFL++ harnesses (fuzz/Vsock.Fuzz, run by scripts/fuzz.sh) from rotting: every target runs in process,
/// uninstrumented, over its seed corpus, the inputs of fixed findings, and a few thousand deterministic mutations
/// of them; any invariant violation or unexpected exception fails the test with the input that caused it.
/// One class, so no two tests drive the same target object at once.
/// </summary>
public sealed class FuzzTargetTests
{
    private const int Mutations = 5000;

    public static TheoryData<string> Targets => new(FuzzTargets.All.Select(t => t.Name));

    [Theory]
    [MemberData(nameof(Targets))]
    public void Committed_corpus_is_what_the_seed_builders_write(string name)
    {
        var target = FuzzTargets.Find(name)!;
        var committed = Files("corpus", name).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        var built = target.Seeds().ToDictionary(s => s.Name, s => s.Input);

        // Regenerate with: dotnet fuzz/Vsock.Fuzz/bin/Release/net10.0/Vsock.Fuzz.dll seeds fuzz/corpus
        Assert.Equal(built.Keys.Order(), committed.Keys.Order());
        foreach (var (file, bytes) in built)
            Assert.True(bytes.AsSpan().SequenceEqual(committed[file]), $"fuzz/corpus/{name}/{file} is stale");
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Corpus_and_regression_inputs_hold_the_invariants(string name)
    {
        var target = FuzzTargets.Find(name)!;
        foreach (var file in Files("corpus", name).Concat(Files("regressions", name)))
            Run(target, File.ReadAllBytes(file), file);
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Mutated_inputs_hold_the_invariants(string name)
    {
        var target = FuzzTargets.Find(name)!;
        var corpus = Files("corpus", name).Concat(Files("regressions", name)).Select(File.ReadAllBytes).ToList();
        var random = new Random(0x0f0f + name.Length);
        var outcomes = new HashSet<string>();
        for (var i = 0; i < Mutations; i++)
        {
            var input = Mutator.Mutate(random, corpus[i % corpus.Count], corpus);
            outcomes.Add(Run(target, input, $"mutation {i}"));
        }
        Assert.True(outcomes.Count >= 4, $"mutations reached only {outcomes.Count} outcomes: {string.Join("; ", outcomes)}");
    }

    /// <summary>The seeds must reach the paths they were written for, or the campaigns start from nowhere.</summary>
    [Theory]
    [InlineData("vhost-user", "qemu-7.2-rust-vmm-offer", "end of stream after 45 messages, 4 ring starts")]
    [InlineData("vhost-user", "qemu-7.2-mem-slots-status", "end of stream after 49 messages, 4 ring starts")]
    [InlineData("vhost-user", "qemu-7.2-split-reads", "end of stream after 49 messages, 4 ring starts")]
    [InlineData("vhost-user", "reset-device", "end of stream after 18 messages, 2 ring starts")]
    [InlineData("virtqueue", "linux-tx-header-and-payload", "1 chains (1 TX, 0 RX packets), 0 malformed")]
    [InlineData("virtqueue", "indirect-tx", "1 chains (1 TX, 0 RX packets), 0 malformed")]
    [InlineData("virtqueue", "event-idx-wrap", "3 chains (0 TX, 3 RX packets), 0 malformed")]
    [InlineData("virtqueue", "malformed-chains", "0 chains (0 TX, 0 RX packets), 6 malformed")]
    [InlineData("connect", "connect-with-data", "Outcome { Status = Complete, Port = 5000, Consumed = 13 }")]
    [InlineData("connect", "no-newline-then-close", "Outcome { Status = Complete, Port = 42, Consumed = 10 }")]
    [InlineData("config", "yaml-readme", "2 vms")]
    [InlineData("config", "argv-several-vms", "3 vms")]
    [InlineData("config", "argv-config-file", "2 vms")]
    public void Seed_reaches_its_path(string name, string file, string outcome)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "corpus", name, file);
        Assert.Equal(outcome, FuzzTargets.Find(name)!.Run(File.ReadAllBytes(path)));
    }

    /// <summary>Inputs that found bugs (fuzz/regressions) now end the way the fix decided.</summary>
    [Theory]
    [InlineData("vhost-user", "mem-table-drops-running-ring", "session: BadMemoryRegion after 30 messages, 2 ring starts")]
    [InlineData("config", "yaml-tag-not-a-uri", "error")]
    [InlineData("config", "yaml-key-of-control-characters", "error")]
    [InlineData("config", "argument-with-a-line-break", "error")]
    [InlineData("config", "vm-value-with-a-line-break", "error")]
    public void Finding_ends_as_fixed(string name, string file, string outcome)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "regressions", name, file);
        Assert.Equal(outcome, FuzzTargets.Find(name)!.Run(File.ReadAllBytes(path)));
    }

    /// <summary>An input may ask for more fds than the process may open (20,000): the target caps them per input.</summary>
    [Fact]
    public void Vhost_user_input_asking_for_a_million_fds_runs()
    {
        var input = new byte[1 + 3 * 20_000];
        for (var i = 1; i < input.Length; i += 3)
            input[i] = 0x3f; // 63 fds, no bytes
        Assert.Equal("end of stream after 0 messages, 0 ring starts", FuzzTargets.Find("vhost-user")!.Run(input));
    }

    private static string Run(IFuzzTarget target, byte[] input, string what)
    {
        try
        {
            return target.Run(input);
        }
        catch (Exception e)
        {
            Assert.Fail($"{target.Name}, {what} ({Convert.ToHexString(input)}): {e}");
            throw;
        }
    }

    private static IEnumerable<string> Files(string kind, string name)
    {
        var dir = Path.Combine(AppContext.BaseDirectory, kind, name);
        return Directory.Exists(dir) ? Directory.GetFiles(dir).Order(StringComparer.Ordinal) : [];
    }
}
