using System.Runtime.CompilerServices;
using Microsoft.Win32.SafeHandles;
using Vsock.Device.Memory;
using static Vsock.Device.VhostUser.VhostUserProtocolFeatures;

namespace Vsock.Device.VhostUser;

// SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG. A new table is built completely (every region mapped and
// checked) before it replaces the old one, so a refused request leaves the table in effect untouched.
public sealed partial class VhostUserSession
{
    /// <summary>SET_MEM_TABLE's fixed capacity (QEMU's VHOST_MEMORY_BASELINE_NREGIONS).</summary>
    public const int MaxMemTableRegions = 8;

    /// <summary>GET_MAX_MEM_SLOTS answer, rust-vmm's (QEMU uses min(this, its own 512 or ACPI limit)).</summary>
    public const ulong MaxMemorySlots = 509;

    private void SetMemTable(VhostUserMessage m)
    {
        var payload = m.Payload.Span;
        var tableHeaderSize = Unsafe.SizeOf<VhostUserMemoryTableHeader>();
        var regionSize = Unsafe.SizeOf<VhostUserMemoryRegion>();
        if (payload.Length < tableHeaderSize)
            throw Fail(VhostUserError.BadPayloadSize, m, $"payload of {payload.Length} bytes is shorter than the {tableHeaderSize}-byte table header");
        var count = VhostUserCodec.Read<VhostUserMemoryTableHeader>(payload).RegionCount;
        if (count is 0 or > MaxMemTableRegions)
            throw Fail(VhostUserError.BadPayload, m, $"{count} regions, expected 1..{MaxMemTableRegions}");
        var expected = tableHeaderSize + (int)count * regionSize;
        if (payload.Length != expected)
            throw Fail(VhostUserError.BadPayloadSize, m, $"payload is {payload.Length} bytes, {count} regions take {expected}");
        ExpectFds(m, (int)count);

        // The mappings outlive the fds: close every fd once mapping is over, whatever happened.
        var fds = new SafeFileHandle[count];
        for (var i = 0; i < fds.Length; i++)
            fds[i] = m.TakeFd(i);
        var regions = new List<MemoryRegion>((int)count);
        GuestMemory table;
        try
        {
            for (var i = 0; i < fds.Length; i++)
            {
                var region = VhostUserCodec.Read<VhostUserMemoryRegion>(payload.Slice(tableHeaderSize + i * regionSize, regionSize));
                regions.Add(MapRegion(m, region, fds[i]));
            }
            table = NewTable(m, () => new GuestMemory(regions));
            if (RunningRingsProblem(table) is { } problem)
                throw Fail(VhostUserError.BadMemoryRegion, m, problem);
        }
        catch
        {
            foreach (var region in regions)
                region.Dispose();
            throw;
        }
        finally
        {
            foreach (var fd in fds)
                fd.Dispose();
        }

        var old = _memory;
        _memory = table;
        Log($"memory table: {string.Join("; ", table.Regions)}");
        try
        {
            _backend.MemoryChanged(table);
        }
        finally
        {
            old.Dispose(); // the new table shares no region with the old one
        }
    }

    private void AddMemoryRegion(VhostUserMessage m)
    {
        RequireProtocolFeature(m, ConfigureMemSlots);
        var description = ReadPayload<VhostUserSingleMemoryRegion>(m).Region;
        ExpectFds(m, 1);
        using var fd = m.TakeFd(0);
        if ((ulong)_memory.Regions.Count >= MaxMemorySlots)
            throw Fail(VhostUserError.BadMemoryRegion, m, $"all {MaxMemorySlots} memory slots are in use");
        var region = MapRegion(m, description, fd);
        GuestMemory table;
        try
        {
            table = NewTable(m, () => _memory.With(region));
        }
        catch
        {
            region.Dispose();
            throw;
        }
        _memory = table; // shares every old region: nothing to release
        Log($"memory region added: {region}");
        _backend.MemoryChanged(table);
    }

    private void RemoveMemoryRegion(VhostUserMessage m)
    {
        RequireProtocolFeature(m, ConfigureMemSlots);
        var description = ReadPayload<VhostUserSingleMemoryRegion>(m).Region;
        // The spec says REM_MEM_REG SHOULD carry no fd, but QEMU attaches the region's: accept one and close it.
        if (m.Fds.Count > 1)
            throw Fail(VhostUserError.BadFdCount, m, $"{m.Fds.Count} fds attached, expected at most 1");
        if (m.Fds.Count == 1)
            m.TakeFd(0).Dispose();
        var table = _memory.Without(description.GuestPhysicalAddress, description.UserAddress, description.MemorySize, out var removed);
        if (removed is null)
            throw Fail(VhostUserError.BadMemoryRegion, m, $"no region matches {description}");
        if (RunningRingsProblem(table) is { } problem)
            throw Fail(VhostUserError.BadMemoryRegion, m, problem);
        _memory = table;
        Log($"memory region removed: {removed}");
        try
        {
            _backend.MemoryChanged(table);
        }
        finally
        {
            removed.Dispose();
        }
    }

    private MemoryRegion MapRegion(VhostUserMessage m, VhostUserMemoryRegion r, SafeFileHandle fd)
    {
        if (r.MemorySize == 0)
            throw Fail(VhostUserError.BadMemoryRegion, m, $"empty region ({r})");
        var last = r.MemorySize - 1;
        if (r.GuestPhysicalAddress > ulong.MaxValue - last || r.UserAddress > ulong.MaxValue - last || r.MmapOffset > ulong.MaxValue - last)
            throw Fail(VhostUserError.BadMemoryRegion, m, $"region wraps around 2^64 ({r})");
        try
        {
            return _mapper.Map(fd, r.MmapOffset, r.GuestPhysicalAddress, r.MemorySize, r.UserAddress);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or GuestMemoryException or ArgumentException or OverflowException)
        {
            // The fd or the numbers the VMM sent do not map (mmap failed, fd too short, size beyond the address space).
            throw Fail(VhostUserError.MemoryMapFailed, m, $"cannot map region ({r}): {e.Message}");
        }
    }

    private static GuestMemory NewTable(VhostUserMessage m, Func<GuestMemory> build)
    {
        try
        {
            return build();
        }
        catch (GuestMemoryException e)
        {
            throw Fail(VhostUserError.BadMemoryRegion, m, e.Message);
        }
    }
}
