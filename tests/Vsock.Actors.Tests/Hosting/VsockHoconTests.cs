using Vsock.Actors.Hosting;

namespace Vsock.Actors.Tests.Hosting;

public class VsockHoconTests
{
    [Theory]
    [InlineData(VsockHocon.Dispatchers)]
    [InlineData(VsockHocon.Cluster)]
    public void The_embedded_files_are_the_files_of_the_build(string file)
    {
        Assert.Equal(File.ReadAllText(VsockHocon.PathOf(file)), VsockHocon.Embedded(file));
    }
}
