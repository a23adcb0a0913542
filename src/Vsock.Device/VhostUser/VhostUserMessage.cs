using Microsoft.Win32.SafeHandles;

namespace Vsock.Device.VhostUser;

/// <summary>
/// One request from the front-end with the fds that came with it. Whoever consumes an fd takes it with
/// <see cref="TakeFd"/>; <see cref="Dispose"/> closes the rest, so an fd attached to a message that does
/// not use it, or to a message that was refused, never leaks.
/// </summary>
public sealed class VhostUserMessage : IDisposable
{
    private readonly SafeFileHandle[] _fds;
    private readonly bool[] _taken;

    public VhostUserMessage(VhostUserRequest request, uint flags, ReadOnlyMemory<byte> payload, IReadOnlyList<SafeFileHandle>? fds = null)
    {
        Request = request;
        Flags = flags;
        Payload = payload;
        _fds = fds is null ? [] : [.. fds];
        _taken = new bool[_fds.Length];
    }

    public VhostUserRequest Request { get; }
    public uint Flags { get; }
    public ReadOnlyMemory<byte> Payload { get; }
    public IReadOnlyList<SafeFileHandle> Fds => _fds;
    public bool NeedReply => (Flags & VhostUserCodec.NeedReplyFlag) != 0;

    /// <summary>Transfers ownership of fd <paramref name="index"/> to the caller.</summary>
    public SafeFileHandle TakeFd(int index)
    {
        if (_taken[index])
            throw new InvalidOperationException($"fd {index} of {VhostUserCodec.Name(Request)} was already taken");
        _taken[index] = true;
        return _fds[index];
    }

    /// <summary>Closes every fd nobody took.</summary>
    public void Dispose()
    {
        for (var i = 0; i < _fds.Length; i++)
        {
            if (_taken[i])
                continue;
            _taken[i] = true;
            _fds[i].Dispose();
        }
    }

    public override string ToString() =>
        $"{VhostUserCodec.Name(Request)} flags 0x{Flags:x} size {Payload.Length} fds {_fds.Length}";
}
