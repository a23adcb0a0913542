using System.Numerics;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Backend;
using Vsock.Device.Memory;
using Vsock.Device.VhostUser;

namespace Vsock.Fuzz.Targets.VhostUser;

/// <summary>
/// The production <see cref="VsockBackend"/> behind a checker of the session's side of
/// <see cref="IVhostUserBackend"/>: a ring starts only once, with a power-of-two size the backend allows, and
/// inside a non-empty memory table; only running rings are stopped or enabled; Reset leaves nothing running.
/// </summary>
internal sealed class CheckedBackend(VsockBackend inner) : IVhostUserBackend
{
    private readonly bool[] _running = new bool[inner.QueueCount];

    public ulong Features => inner.Features;
    public ulong ProtocolFeatures => inner.ProtocolFeatures;
    public int QueueCount => inner.QueueCount;
    public int MaxQueueSize => inner.MaxQueueSize;
    public ReadOnlySpan<byte> ConfigSpace => inner.ConfigSpace;

    public GuestMemory Memory { get; private set; } = GuestMemory.Empty;
    public int RunningCount => _running.Count(r => r);
    public int Starts { get; private set; }

    public void FeaturesAcked(ulong features)
    {
        Invariant.Holds((features & ~inner.Features) == 0, "the session acked features the backend did not offer");
        inner.FeaturesAcked(features);
    }

    public void MemoryChanged(GuestMemory memory)
    {
        Memory = memory;
        inner.MemoryChanged(memory);
    }

    public void RingStarted(int index, VringConfig config)
    {
        Invariant.Holds(index >= 0 && index < _running.Length && config.Index == index, "RingStarted with a bad index");
        Invariant.Holds(!_running[index], "a running ring was started again");
        Invariant.Holds(config.Size > 0 && config.Size <= inner.MaxQueueSize && BitOperations.IsPow2(config.Size), "a ring started with a bad size");
        Invariant.Holds(Memory.Regions.Count > 0, "a ring started without a memory table");
        Invariant.Holds(config.KickFd is null || !config.KickFd.IsClosed, "a ring started with a closed kick fd");
        _running[index] = true;
        Starts++;
        inner.RingStarted(index, config);
    }

    public ushort RingStopped(int index)
    {
        Invariant.Holds(index >= 0 && index < _running.Length && _running[index], "a ring was stopped that was not running");
        _running[index] = false;
        return inner.RingStopped(index);
    }

    public void CallFdChanged(int index, SafeFileHandle? callFd)
    {
        Invariant.Holds(index >= 0 && index < _running.Length, "CallFdChanged with a bad index");
        Invariant.Holds(callFd is null || !callFd.IsClosed, "the session handed over a closed call fd");
        inner.CallFdChanged(index, callFd);
    }

    public void RingEnabledChanged(int index, bool enabled)
    {
        Invariant.Holds(index >= 0 && index < _running.Length && _running[index], "enable changed on a ring that is not running");
        inner.RingEnabledChanged(index, enabled);
    }

    public void Reset()
    {
        Array.Clear(_running);
        inner.Reset();
    }
}

/// <summary>Device events go nowhere: the target drives no rings, only the session's control path.</summary>
internal sealed class NoDeviceEvents : IVsockDeviceEvents
{
    public static NoDeviceEvents Instance { get; } = new();

    public void RingReady(int index, SafeFileHandle? kickFd) =>
        Invariant.Holds(kickFd is null || !kickFd.IsClosed, "RingReady with a closed kick fd");

    public void RingStopped(int index)
    {
    }

    public void DeviceReset()
    {
    }
}
