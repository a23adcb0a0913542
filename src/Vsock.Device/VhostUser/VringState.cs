using Microsoft.Win32.SafeHandles;

namespace Vsock.Device.VhostUser;

/// <summary>
/// What the session knows about one ring. Two independent states (vhost-user.rst "Ring states"):
/// started/stopped (a kick arrived / GET_VRING_BASE) and enabled/disabled (SET_VRING_ENABLE).
/// <see cref="Running"/> says the backend was told <see cref="IVhostUserBackend.RingStarted"/>.
/// </summary>
internal sealed class VringState
{
    public ushort Size;
    public bool HasAddresses;
    public ulong DescGpa;
    public ulong AvailGpa;
    public ulong UsedGpa;
    public ushort Base;
    public bool Enabled;
    public bool Running;

    /// <summary>SET_VRING_KICK arrived (with an fd, or "no fd" for polling) since the last stop.</summary>
    public bool Kicked { get; private set; }

    /// <summary>The kick fd, held until the ring runs and the backend takes it.</summary>
    private SafeFileHandle? _kick;

    /// <summary>Kept only to be closed: the vsock device never reports ring errors.</summary>
    private SafeFileHandle? _err;

    public void SetKick(SafeFileHandle? fd)
    {
        _kick?.Dispose();
        _kick = fd;
        Kicked = true;
    }

    public SafeFileHandle? TakeKick()
    {
        var fd = _kick;
        _kick = null;
        return fd;
    }

    /// <summary>The ring stopped: the next start needs a new SET_VRING_KICK.</summary>
    public void Stop()
    {
        _kick?.Dispose();
        _kick = null;
        Kicked = false;
        Running = false;
    }

    public void SetErr(SafeFileHandle? fd)
    {
        _err?.Dispose();
        _err = fd;
    }

    /// <summary>Back to the initial state (stopped, disabled, unconfigured), closing held fds.</summary>
    public void Clear()
    {
        Stop();
        SetErr(null);
        Size = 0;
        HasAddresses = false;
        DescGpa = AvailGpa = UsedGpa = 0;
        Base = 0;
        Enabled = false;
    }
}
