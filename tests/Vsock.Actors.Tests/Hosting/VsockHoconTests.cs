using Vsock.Actors.Hosting;

namespace Vsock.Actors.Tests.Hosting;

public class VsockHoconTests
{
    [Fact]
    public void The_embedded_dispatchers_are_the_file_of_the_build()
    {
        Assert.Equal(File.ReadAllText(VsockHostingExtensions.HoconPath), VsockHocon.Embedded());
    }

}
