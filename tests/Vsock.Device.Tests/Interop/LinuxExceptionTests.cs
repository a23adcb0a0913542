using Vsock.Device.Interop;

namespace Vsock.Device.Tests.Interop;

public sealed class LinuxExceptionTests
{
    [Fact]
    public void Message_names_the_operation_the_error_text_and_the_number()
    {
        var e = new LinuxException(Errno.ENOENT, "open /nowhere");
        Assert.Equal(2, e.Errno);
        Assert.Equal("open /nowhere", e.Operation);
        Assert.Equal("open /nowhere failed: No such file or directory (errno 2)", e.Message);
        Assert.IsAssignableFrom<IOException>(e);
    }

    [Fact]
    public void A_failing_call_reports_its_errno()
    {
        // Connecting to a path nobody listens on: ENOENT from connect(2).
        var dir = Directory.CreateTempSubdirectory("vsock-interop-");
        try
        {
            var e = Assert.Throws<LinuxException>(() => UnixSocket.Connect(Path.Combine(dir.FullName, "absent.sock")));
            Assert.Equal(Errno.ENOENT, e.Errno);
            Assert.Contains("errno 2", e.Message);
            Assert.StartsWith("connect ", e.Message);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
