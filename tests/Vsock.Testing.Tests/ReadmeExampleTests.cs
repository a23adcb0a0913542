namespace Vsock.Testing.Tests;

/// <summary>
/// The READMEs show the example project's test class as it is (examples/Vsock.Example.Tests), so what they show is
/// what runs: a change to either without the other fails here.
/// </summary>
public sealed class ReadmeExampleTests
{
    private const string ClassStart = "public sealed class OneStreamEachWayTests";

    [Theory]
    [InlineData("README.md")]
    [InlineData("src/Vsock.Testing/README.md")]
    public void The_readme_shows_the_example_test_line_for_line(string readme)
    {
        var example = File.ReadAllText(Path.Combine(Root, "examples", "Vsock.Example.Tests", "OneStreamEachWayTests.cs"));
        var text = File.ReadAllText(Path.Combine(Root, readme));
        var start = text.IndexOf(ClassStart, StringComparison.Ordinal);
        Assert.True(start >= 0, $"{readme} shows no {ClassStart}");
        var shown = text[start..text.IndexOf("```", start, StringComparison.Ordinal)];

        Assert.Equal(example[example.IndexOf(ClassStart, StringComparison.Ordinal)..], shown);
    }

    private static string Root
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "VsockActors.sln")))
                    return dir.FullName;
            }
            throw new DirectoryNotFoundException($"no VsockActors.sln above {AppContext.BaseDirectory}");
        }
    }
}
