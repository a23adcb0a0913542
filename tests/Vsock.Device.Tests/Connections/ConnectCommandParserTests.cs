using System.Text;
using Vsock.Device.Connections;
using Status = Vsock.Device.Connections.ConnectCommandParser.Status;

namespace Vsock.Device.Tests.Connections;

public class ConnectCommandParserTests
{
    private static (Status status, int consumed, uint port, string? error) Feed(ConnectCommandParser p, string s)
    {
        var status = p.Feed(Encoding.ASCII.GetBytes(s), out var consumed, out var port, out var error);
        return (status, consumed, port, error);
    }

    [Theory]
    [InlineData("CONNECT 1234\n", 1234u)]
    [InlineData("connect 5000\n", 5000u)]
    [InlineData("Connect 1\n", 1u)]
    [InlineData("CONNECT 4294967295\n", 4294967295u)]
    [InlineData("CONNECT  77 extra words\n", 77u)]
    [InlineData("CONNECT 80\r\n", 80u)]
    public void Parses_a_whole_line(string line, uint expected)
    {
        var (status, consumed, port, _) = Feed(new ConnectCommandParser(), line);
        Assert.Equal(Status.Complete, status);
        Assert.Equal(line.Length, consumed);
        Assert.Equal(expected, port);
    }

    [Fact]
    public void A_partial_line_waits_for_more()
    {
        var p = new ConnectCommandParser();
        Assert.Equal(Status.NeedMore, Feed(p, "CON").status);
        Assert.Equal(Status.NeedMore, Feed(p, "NECT 12").status);
        var (status, consumed, port, _) = Feed(p, "34\n");
        Assert.Equal(Status.Complete, status);
        Assert.Equal(3, consumed);
        Assert.Equal(1234u, port);
    }

    [Fact]
    public void Bytes_after_the_newline_are_left_to_the_caller()
    {
        var (status, consumed, port, _) = Feed(new ConnectCommandParser(), "CONNECT 9\nhello");
        Assert.Equal(Status.Complete, status);
        Assert.Equal("CONNECT 9\n".Length, consumed);
        Assert.Equal(9u, port);
    }

    [Theory]
    [InlineData("CONNECT\n")]
    [InlineData("CONNECT abc\n")]
    [InlineData("CONNECT -1\n")]
    [InlineData("CONNECT 4294967296\n")]
    [InlineData("HELLO 1234\n")]
    [InlineData("\n")]
    [InlineData("CONNECT 12\u0001\n")]
    public void Garbage_is_invalid(string line)
    {
        var (status, _, _, error) = Feed(new ConnectCommandParser(), line);
        Assert.Equal(Status.Invalid, status);
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void A_line_longer_than_32_bytes_is_invalid_even_in_pieces()
    {
        var p = new ConnectCommandParser();
        Assert.Equal(Status.NeedMore, Feed(p, new string('A', 20)).status);
        var (status, _, _, error) = Feed(p, new string('A', 20));
        Assert.Equal(Status.Invalid, status);
        Assert.Contains("32", error);
    }

    [Fact]
    public void End_of_stream_accepts_a_line_without_newline_like_the_reference()
    {
        var p = new ConnectCommandParser();
        Feed(p, "CONNECT 42");
        Assert.Equal(Status.Complete, p.FeedEndOfStream(out var port, out _));
        Assert.Equal(42u, port);
        Assert.Equal(Status.Invalid, new ConnectCommandParser().FeedEndOfStream(out _, out var error));
        Assert.Contains("closed", error);
    }

    [Fact]
    public void Random_bytes_never_throw()
    {
        var random = new Random(1234);
        var buffer = new byte[40];
        for (var i = 0; i < 20000; i++)
        {
            var p = new ConnectCommandParser();
            random.NextBytes(buffer);
            var n = random.Next(buffer.Length);
            var status = p.Feed(buffer.AsSpan(0, n), out var consumed, out _, out _);
            Assert.InRange(consumed, 0, n);
            Assert.True(Enum.IsDefined(status));
        }
    }
}
