using System.Net.Sockets;

namespace Vsock.Actors.Tests.TestSupport;

/// <summary>A connected pair of unix stream sockets through a listener in a private temp directory.</summary>
public sealed class UnixPair : IDisposable
{
    private readonly string _dir;

    public UnixPair()
    {
        _dir = Directory.CreateTempSubdirectory("vsock-pair-").FullName;
        var path = Path.Combine(_dir, "s");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        Client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        Client.Connect(new UnixDomainSocketEndPoint(path));
        Server = listener.Accept();
        Client.ReceiveTimeout = 10_000;
    }

    /// <summary>The test's end (the "host application").</summary>
    public Socket Client { get; }

    /// <summary>The end handed to the actor under test.</summary>
    public Socket Server { get; }

    public void Dispose()
    {
        Client.Dispose();
        Server.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
