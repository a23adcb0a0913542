using System.Numerics;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Memory;
using Vsock.Device.Virtio;

namespace Vsock.Device.VhostUser;

// Ring requests. A ring is handed to the backend (RingStarted) once it is kicked and enabled, with a
// size, translated addresses and a memory table; GET_VRING_BASE takes it back (RingStopped). A running
// ring's layout cannot change under the backend: resizing, moving or rebasing it is refused.
public sealed partial class VhostUserSession
{
    private const ulong VringIndexMask = 0xff;
    private const ulong VringNoFdFlag = 0x100;

    private void SetVringNum(VhostUserMessage m)
    {
        var state = ReadPayload<VhostUserVringState>(m);
        ExpectNoFds(m);
        var ring = Ring(m, state.Index);
        if (state.Num == 0 || state.Num > (uint)_maxRingSize || !BitOperations.IsPow2(state.Num))
            throw Fail(VhostUserError.BadRingConfig, m, $"ring {state.Index} size {state.Num} is not a power of two in 1..{_maxRingSize}");
        if (ring.Running && ring.Size != state.Num)
            throw Fail(VhostUserError.BadRingConfig, m, $"ring {state.Index} is running at size {ring.Size}; stop it (GET_VRING_BASE) before resizing");
        ring.Size = (ushort)state.Num;
        TryStart(m, (int)state.Index);
    }

    private void SetVringAddr(VhostUserMessage m)
    {
        var addr = ReadPayload<VhostUserVringAddr>(m);
        ExpectNoFds(m);
        if ((addr.Flags & ~VhostUserVringAddr.LogFlag) != 0)
            throw Fail(VhostUserError.BadPayload, m, $"unknown ring address flags 0x{addr.Flags:x}");
        var ring = Ring(m, addr.Index);
        // The spec's alignments for split rings: descriptor table 16, available ring 2, used ring 4.
        var desc = Translate(m, addr.Index, "descriptor table", addr.DescUserAddress, 16);
        var avail = Translate(m, addr.Index, "available ring", addr.AvailUserAddress, 2);
        var used = Translate(m, addr.Index, "used ring", addr.UsedUserAddress, 4);
        if (ring.Running && (ring.DescGpa != desc || ring.AvailGpa != avail || ring.UsedGpa != used))
            throw Fail(VhostUserError.BadRingConfig, m, $"ring {addr.Index} is running; stop it (GET_VRING_BASE) before moving it");
        ring.DescGpa = desc;
        ring.AvailGpa = avail;
        ring.UsedGpa = used;
        ring.HasAddresses = true;
        TryStart(m, (int)addr.Index);
    }

    private ulong Translate(VhostUserMessage m, uint index, string what, ulong userAddress, uint alignment)
    {
        if (!_memory.TryUserToGuest(userAddress, out var gpa))
            throw Fail(VhostUserError.BadRingAddress, m, $"ring {index} {what} at VMM address 0x{userAddress:x} is outside the memory table");
        if (gpa % alignment != 0)
            throw Fail(VhostUserError.BadRingAddress, m, $"ring {index} {what} at guest address 0x{gpa:x} is not {alignment}-byte aligned");
        return gpa;
    }

    private void SetVringBase(VhostUserMessage m)
    {
        var state = ReadPayload<VhostUserVringState>(m);
        ExpectNoFds(m);
        var ring = Ring(m, state.Index);
        if (state.Num > ushort.MaxValue)
            throw Fail(VhostUserError.BadRingConfig, m, $"ring {state.Index} base 0x{state.Num:x} does not fit a split ring's 16-bit index");
        if (ring.Running)
            throw Fail(VhostUserError.BadRingConfig, m, $"ring {state.Index} is running; stop it (GET_VRING_BASE) before setting its base");
        ring.Base = (ushort)state.Num;
    }

    private int GetVringBase(VhostUserMessage m, Span<byte> reply)
    {
        var state = ReadPayload<VhostUserVringState>(m);
        ExpectNoFds(m);
        var ring = Ring(m, state.Index);
        if (ring.Running)
        {
            ring.Base = _backend.RingStopped((int)state.Index);
            Log($"ring {state.Index} stopped at avail {ring.Base}");
        }
        ring.Stop();
        var answer = new VhostUserVringState { Index = state.Index, Num = ring.Base };
        return VhostUserCodec.EncodeReply(m.Request, in answer, reply);
    }

    private void SetVringKick(VhostUserMessage m)
    {
        var (index, fd) = ReadVringFd(m);
        var ring = _rings[index];
        if (ring.Running)
        {
            // The backend owns the running ring's kick fd; a new one means: stop, then start again
            // with the new fd where the ring left off.
            ring.Base = _backend.RingStopped(index);
            ring.Stop();
            Log($"ring {index}: kick fd replaced while running, restarting at avail {ring.Base}");
        }
        ring.SetKick(fd);
        TryStart(m, index);
    }

    private void SetVringCall(VhostUserMessage m)
    {
        var (index, fd) = ReadVringFd(m);
        _backend.CallFdChanged(index, fd);
    }

    private void SetVringErr(VhostUserMessage m)
    {
        var (index, fd) = ReadVringFd(m);
        _rings[index].SetErr(fd);
    }

    /// <summary>KICK/CALL/ERR payload: u64 with the ring index in bits 0-7 and "no fd" in bit 8.</summary>
    private (int Index, SafeFileHandle? Fd) ReadVringFd(VhostUserMessage m)
    {
        var value = ReadPayload<ulong>(m);
        if ((value & ~(VringIndexMask | VringNoFdFlag)) != 0)
            throw Fail(VhostUserError.BadPayload, m, $"reserved bits set in 0x{value:x}");
        var noFd = (value & VringNoFdFlag) != 0;
        ExpectFds(m, noFd ? 0 : 1);
        var fd = noFd ? null : m.TakeFd(0);
        var index = value & VringIndexMask;
        if (index >= (ulong)_rings.Length)
        {
            fd?.Dispose();
            throw Fail(VhostUserError.BadRingIndex, m, $"ring {index} does not exist (the device has {_rings.Length})");
        }
        return ((int)index, fd);
    }

    private void SetVringEnable(VhostUserMessage m)
    {
        var state = ReadPayload<VhostUserVringState>(m);
        ExpectNoFds(m);
        Ring(m, state.Index);
        if ((AckedFeatures & VirtioFeatures.Bit(VirtioFeatures.ProtocolFeatures)) == 0)
            throw Fail(VhostUserError.NotAllowed, m, "VHOST_USER_F_PROTOCOL_FEATURES is not negotiated, so rings are always enabled");
        if (state.Num > 1)
            throw Fail(VhostUserError.BadRingConfig, m, $"ring {state.Index} enable value {state.Num} is neither 0 nor 1");
        ApplyEnable(m, (int)state.Index, state.Num == 1);
    }

    private void ApplyEnable(VhostUserMessage m, int index, bool enabled)
    {
        var ring = _rings[index];
        if (ring.Enabled == enabled)
            return;
        ring.Enabled = enabled;
        if (ring.Running)
        {
            Log($"ring {index} {(enabled ? "enabled" : "disabled")}");
            _backend.RingEnabledChanged(index, enabled);
        }
        else
        {
            TryStart(m, index);
        }
    }

    private void TryStart(VhostUserMessage m, int index)
    {
        var ring = _rings[index];
        if (ring.Running || !ring.Kicked || !ring.Enabled || ring.Size == 0 || !ring.HasAddresses || _memory.Regions.Count == 0)
            return;
        // SET_VRING_ADDR checked where each area starts; only now is the size known too. The backend maps the
        // whole areas (SplitQueue) and must not be handed a ring it cannot map (found by scripts/fuzz.sh vhost-user).
        // The request's own change stays (the ring is configured, not running); a later request may fix the layout.
        if (RingAreasProblem(ring, _memory) is { } problem)
            throw Fail(VhostUserError.BadRingAddress, m, $"ring {index} cannot start: {problem}");
        var features = AckedFeatures;
        var config = new VringConfig(
            index,
            ring.Size,
            ring.DescGpa,
            ring.AvailGpa,
            ring.UsedGpa,
            ring.Base,
            EventIdx: Has(features, VirtioFeatures.RingEventIdx),
            IndirectDescriptors: Has(features, VirtioFeatures.RingIndirectDesc),
            NotifyOnEmpty: Has(features, VirtioFeatures.NotifyOnEmpty),
            KickFd: ring.TakeKick());
        ring.Running = true;
        Log($"ring {index} started: size {config.Size} desc 0x{config.DescTableGpa:x} avail 0x{config.AvailRingGpa:x} " +
            $"used 0x{config.UsedRingGpa:x} next avail {config.NextAvail}{(config.KickFd is null ? " (no kick fd: polling)" : "")}");
        _backend.RingStarted(index, config);
    }

    /// <summary>
    /// Why a running ring would not lie inside <paramref name="memory"/> after a memory table change, or null. A
    /// table that drops a running ring's memory is refused before it replaces the current one.
    /// </summary>
    private string? RunningRingsProblem(GuestMemory memory)
    {
        for (var i = 0; i < _rings.Length; i++)
        {
            if (_rings[i].Running && RingAreasProblem(_rings[i], memory) is { } problem)
                return $"ring {i} is running and its {problem} in the new table";
        }
        return null;
    }

    /// <summary>
    /// Why the ring's three areas are not mapped the way <see cref="SplitQueue"/> maps them (each inside one region,
    /// at a host address with the area's alignment), or null.
    /// </summary>
    private static string? RingAreasProblem(VringState ring, GuestMemory memory) =>
        AreaProblem(memory, "descriptor table", ring.DescGpa, SplitRingLayout.DescriptorTableBytes(ring.Size), SplitRingLayout.DescriptorTableAlignment) ??
        AreaProblem(memory, "available ring", ring.AvailGpa, SplitRingLayout.AvailRingBytes(ring.Size), SplitRingLayout.AvailRingAlignment) ??
        AreaProblem(memory, "used ring", ring.UsedGpa, SplitRingLayout.UsedRingBytes(ring.Size), SplitRingLayout.UsedRingAlignment);

    private static unsafe string? AreaProblem(GuestMemory memory, string what, ulong gpa, ulong length, int alignment)
    {
        if (!memory.TryGetHostPointer(gpa, length, out var pointer))
            return $"{what} 0x{gpa:x}+0x{length:x} is not inside one memory region";
        return ((nint)pointer & (alignment - 1)) != 0 ? $"{what} at 0x{gpa:x} maps to a misaligned host address" : null;
    }

    private static bool Has(ulong features, int bit) => (features & (1UL << bit)) != 0;

    private VringState Ring(VhostUserMessage m, uint index) =>
        index < (uint)_rings.Length
            ? _rings[index]
            : throw Fail(VhostUserError.BadRingIndex, m, $"ring {index} does not exist (the device has {_rings.Length})");
}
