using System.Net.Sockets;
using Akka.Actor;

namespace Vsock.Actors.Connections;

/// <summary>
/// One reusable asynchronous socket operation (receive or send) whose completion becomes a message
/// to the owning actor, as Akka.IO's TcpConnection does: no Task, no per-operation allocation, and
/// the actor's state is only touched when it processes the message.
/// </summary>
internal sealed class SocketOperation : IDisposable
{
    private readonly SocketAsyncEventArgs _args = new();
    private readonly IActorRef _owner;
    private readonly object _completed;

    public SocketOperation(IActorRef owner, object completedMessage)
    {
        _owner = owner;
        _completed = completedMessage;
        _args.Completed += (_, _) => _owner.Tell(_completed);
    }

    public bool Pending { get; private set; }
    public byte[]? Buffer => _args.Buffer;
    public int BytesTransferred => _args.BytesTransferred;
    public SocketError Error => _args.SocketError;

    public void StartReceive(Socket socket, byte[] buffer, int offset, int count)
    {
        _args.SetBuffer(buffer, offset, count);
        Pending = true;
        if (!socket.ReceiveAsync(_args))
            _owner.Tell(_completed); // completed synchronously: still report through the mailbox
    }

    public void StartSend(Socket socket, byte[] buffer, int offset, int count)
    {
        _args.SetBuffer(buffer, offset, count);
        Pending = true;
        if (!socket.SendAsync(_args))
            _owner.Tell(_completed);
    }

    /// <summary>Called by the owner when it handles the completion message.</summary>
    public void Complete()
    {
        Pending = false;
    }

    public void ReleaseBuffer() => _args.SetBuffer(null, 0, 0);

    public void Dispose() => _args.Dispose();
}
