using System.Net.Sockets;
using Akka.Actor;

namespace Vsock.Actors.Connections;

/// <summary>
/// One reusable asynchronous socket operation (receive or send) whose completion becomes a message
/// to the owning actor, as Akka.IO's TcpConnection does: no Task, no per-operation allocation, and
/// the actor's state is only touched when it processes the message.
///
/// An operation the kernel completes at once (the usual case for unix sockets with room or data) is
/// not sent through the mailbox: Start* returns true and the owner handles the result in the same
/// turn. That saves a message per host read and write (see docs/BENCHMARKS.md).
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
    /// <summary>The byte count asked for.</summary>
    public int Count => _args.Count;
    public SocketError Error => _args.SocketError;

    /// <returns>True if the receive completed synchronously: no message follows; the caller calls <see cref="Complete"/> and reads the result now.</returns>
    public bool StartReceive(Socket socket, byte[] buffer, int offset, int count)
    {
        _args.SetBuffer(buffer, offset, count);
        Pending = true;
        return !socket.ReceiveAsync(_args);
    }

    /// <returns>True if the send completed synchronously: no message follows; the caller calls <see cref="Complete"/> and reads the result now.</returns>
    public bool StartSend(Socket socket, byte[] buffer, int offset, int count)
    {
        _args.SetBuffer(buffer, offset, count);
        Pending = true;
        return !socket.SendAsync(_args);
    }

    /// <summary>Reports a synchronous completion through the mailbox after all (when handling it inline would recurse).</summary>
    public void ReportLater() => _owner.Tell(_completed);

    /// <summary>Called by the owner when it handles the completion message.</summary>
    public void Complete()
    {
        Pending = false;
    }

    public void ReleaseBuffer() => _args.SetBuffer(null, 0, 0);

    public void Dispose() => _args.Dispose();
}
