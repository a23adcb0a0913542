using Akka.Actor;
using Akka.Event;
using Vsock.Device.Connections;
using Vsock.Device.Interop;
using Vsock.Device.Packets;
using static Vsock.Actors.Protocol.DeviceProtocol;

namespace Vsock.Actors.Connections;

/// <summary>
/// A host client accepted on <c>uds-path</c> (Firecracker's hybrid vsock): it first sends <c>CONNECT &lt;port&gt;\n</c>;
/// the device then opens the stream to that guest port, and once the guest answers RESPONSE the stream writes
/// <c>OK &lt;port&gt;\n</c> and relays bytes both ways.
///
/// The line is read with MSG_PEEK and taken off the socket only once it is whole, so bytes the client sends after
/// the newline stay in the socket and reach the guest as the stream's first data (the reference loses them).
///
/// A client of <c>uds-path_seqpacket</c> (a SEQPACKET stream) sends the line as its first message, alone
/// (<c>CONNECT &lt;port&gt;\n</c>, the newline optional), and gets <c>OK &lt;port&gt;\n</c> as one message; its
/// next messages are the guest's.
/// </summary>
public sealed class HostInitiatedConnection : ConnectionActor
{
    private byte[]? _line = new byte[ConnectCommandParser.MaxLineLength + 1];
    private bool _opening;

    public HostInitiatedConnection(HostStream stream, ConnectionSettings settings) : base(stream, settings)
    {
    }

    public static Props Props(HostStream stream, ConnectionSettings settings) =>
        Akka.Actor.Props.Create<HostInitiatedConnection>(stream, settings); // no expression tree: one per connection

    protected override void PreStart()
    {
        // No read yet: the client has usually not sent its line when we accept it. Registering reports the socket
        // readable at once if it has, and later when it does.
        WatchSocket();
        StartDeadline(Settings.ConnectLineTimeout);
    }

    protected override void OnSetupReadiness(uint events)
    {
        base.OnSetupReadiness(events); // the stream keeps what it needs later (the peer hanging up)
        if (!_opening)
            ReadConnectLine();
    }

    protected override void OnSetupTimeout()
    {
        if (_opening || Connected)
        {
            base.OnSetupTimeout();
            return;
        }
        Log.Info("host client sent no CONNECT line within {0}; closing it", Settings.ConnectLineTimeout);
        Context.Stop(Self);
    }

    protected override void OnSetupMessage(object message)
    {
        switch (message)
        {
            case OpenedToGuest when _opening:
                StartDeadline(Settings.GuestResponseTimeout);
                BecomeConnected();
                break;
            case OpenRefused refused when _opening:
                Log.Info("host CONNECT refused: {0}", refused.Reason);
                Context.Stop(Self);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    /// <summary>Looks at what the client sent so far; takes the line off the socket once it is complete.</summary>
    private void ReadConnectLine()
    {
        if (Stream.Type == VsockType.SeqPacket)
        {
            ReadConnectMessage();
            return;
        }
        var socket = Stream.Socket!;
        var line = _line!;
        var n = StreamIo.Peek(socket, line);
        if (n == StreamIo.WouldBlock)
            return; // the next edge brings more
        if (n < 0)
        {
            Log.Debug("host client failed before CONNECT: {0}", StreamIo.Describe(n));
            Context.Stop(Self);
            return;
        }
        var parser = new ConnectCommandParser();
        ConnectCommandParser.Status status;
        uint port;
        string? error;
        int consumed;
        if (n == 0)
        {
            status = parser.FeedEndOfStream(out port, out error);
            consumed = 0;
        }
        else
        {
            status = parser.Feed(line.AsSpan(0, n), out consumed, out port, out error);
            if (status == ConnectCommandParser.Status.NeedMore && Stream.Has(StreamStatus.HostClosing))
            {
                // The client shut its write side after an unterminated line: it still counts (as the reference).
                status = parser.FeedEndOfStream(out port, out error);
                consumed = n;
            }
        }
        switch (status)
        {
            case ConnectCommandParser.Status.NeedMore:
                return;
            case ConnectCommandParser.Status.Invalid:
                Log.Warning("closing host client: {0}", error);
                Context.Stop(Self);
                return;
        }
        if (consumed > 0 && StreamIo.Receive(socket, line.AsSpan(0, consumed)) != consumed)
        {
            Context.Stop(Self); // the bytes we just peeked are there; anything else is a broken socket
            return;
        }
        Open(port);
    }

    /// <summary>SEQPACKET: the first message is the whole line (a message arrives whole, so no peeking).</summary>
    private unsafe void ReadConnectMessage()
    {
        var socket = Stream.Socket!;
        int n, flags;
        var buffer = _line!;
        fixed (byte* line = buffer)
        {
            var iov = new IoVec { Base = line, Length = (nuint)buffer.Length };
            n = MessageIo.Receive(socket, &iov, 1, out flags);
        }
        if (n == MessageIo.WouldBlock)
            return; // the next edge brings it
        if (n <= 0)
        {
            Log.Debug("SEQPACKET host client gone before CONNECT: {0}", n == 0 ? "end of stream" : StreamIo.Describe(n));
            Context.Stop(Self);
            return;
        }
        var parser = new ConnectCommandParser();
        var truncated = (flags & Libc.MSG_TRUNC) != 0;
        int consumed = 0;
        uint port = 0;
        string? error = null;
        var status = truncated ? ConnectCommandParser.Status.Invalid : parser.Feed(buffer.AsSpan(0, n), out consumed, out port, out error);
        if (status == ConnectCommandParser.Status.NeedMore)
        {
            status = parser.FeedEndOfStream(out port, out error); // the message's end ends the line
            consumed = n;
        }
        if (status != ConnectCommandParser.Status.Complete || consumed != n)
        {
            Log.Warning("closing SEQPACKET host client: its first message is not one CONNECT line ({0})",
                truncated ? "longer than a CONNECT line" : error ?? "bytes after the line");
            Context.Stop(Self);
            return;
        }
        Open(port);
    }

    private void Open(uint port)
    {
        _line = null;
        _opening = true;
        CancelDeadline();
        Device.Tell(new OpenToGuest(port));
    }
}
