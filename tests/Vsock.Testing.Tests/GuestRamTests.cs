using Vsock.Device.Interop;
using Vsock.Testing.Virtio;

namespace Vsock.Testing.Tests;

/// <summary>The guest RAM files the synthetic guest can be given, as QEMU creates them.</summary>
public sealed class GuestRamTests
{
    [Theory]
    [InlineData(GuestMemoryBacking.SealedMemFd, FileSeals.Grow | FileSeals.Shrink | FileSeals.Seal)]
    [InlineData(GuestMemoryBacking.SealableMemFd, FileSeals.None)]
    [InlineData(GuestMemoryBacking.UnsealableMemFd, FileSeals.Seal)]
    [InlineData(GuestMemoryBacking.ShmFile, FileSeals.Seal)]
    public void Each_backing_has_the_seals_QEMU_would_leave_and_the_memory_is_shared(GuestMemoryBacking backing, FileSeals seals)
    {
        using var ram = new GuestRam(1 << 20, 0x7f00_0000_0000, backing);
        Assert.Equal(seals, MemFd.GetSeals(ram.Fd));
        Assert.Equal(1 << 20, RandomAccess.GetLength(ram.Fd));
        ram.Span(0x1234, 4).Fill(0xAB);
        var copy = new byte[4];
        RandomAccess.Read(ram.Fd, copy, 0x1234); // the file itself sees the write: a shared mapping
        Assert.Equal(new byte[] { 0xAB, 0xAB, 0xAB, 0xAB }, copy);
    }

    [Fact]
    public void A_shm_file_leaves_nothing_behind_in_dev_shm()
    {
        var before = Directory.GetFiles("/dev/shm", "synthetic-guest-ram-*").Length;
        using var ram = new GuestRam(1 << 20, 0, GuestMemoryBacking.ShmFile);
        Assert.Equal(before, Directory.GetFiles("/dev/shm", "synthetic-guest-ram-*").Length);
    }
}
