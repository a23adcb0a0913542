namespace Vsock.Testing.VhostUser;

/// <summary>The back end broke the vhost-user protocol (bad reply flags, wrong size, refused a request, hung up mid-handshake).</summary>
public sealed class VhostUserProtocolException : IOException
{
    public VhostUserProtocolException(string message)
        : base(message)
    {
    }

    public VhostUserProtocolException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
