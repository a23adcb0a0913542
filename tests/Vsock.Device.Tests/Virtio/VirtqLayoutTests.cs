using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Vsock.Device.Virtio;

namespace Vsock.Device.Tests.Virtio;

public class VirtqLayoutTests
{
    [Fact]
    public void Descriptor_is_16_bytes_with_the_virtio_field_offsets()
    {
        Assert.Equal(16, Unsafe.SizeOf<VirtqDescriptor>());
        Assert.Equal(16, Marshal.SizeOf<VirtqDescriptor>());
        Assert.Equal(0, (int)Marshal.OffsetOf<VirtqDescriptor>(nameof(VirtqDescriptor.Address)));
        Assert.Equal(8, (int)Marshal.OffsetOf<VirtqDescriptor>(nameof(VirtqDescriptor.Length)));
        Assert.Equal(12, (int)Marshal.OffsetOf<VirtqDescriptor>(nameof(VirtqDescriptor.Flags)));
        Assert.Equal(14, (int)Marshal.OffsetOf<VirtqDescriptor>(nameof(VirtqDescriptor.Next)));
    }

    [Fact]
    public void Ring_area_sizes_follow_the_spec()
    {
        Assert.Equal(16UL * 256, SplitRingLayout.DescriptorTableBytes(256));
        Assert.Equal(6UL + 2 * 256, SplitRingLayout.AvailRingBytes(256));
        Assert.Equal(6UL + 8 * 256, SplitRingLayout.UsedRingBytes(256));
        Assert.Equal(4UL + 2 * 256, SplitRingLayout.UsedEventOffset(256));
        Assert.Equal(4UL + 8 * 256, SplitRingLayout.AvailEventOffset(256));
        Assert.Equal(6UL + 8 * 32768, SplitRingLayout.UsedRingBytes(32768));
    }

    [Fact]
    public void Feature_bits_and_flags_have_their_spec_values()
    {
        Assert.Equal(0x1_6100_0000UL,
            (1UL << VirtioFeatures.Version1) | (1UL << VirtioFeatures.NotifyOnEmpty) |
            (1UL << VirtioFeatures.RingEventIdx) | (1UL << VirtioFeatures.ProtocolFeatures));
        Assert.Equal(28, VirtioFeatures.RingIndirectDesc);
        Assert.Equal((1, 2, 4), (DescriptorFlags.Next, DescriptorFlags.Write, DescriptorFlags.Indirect));
    }

    [Fact]
    public void Every_chain_error_has_its_own_description()
    {
        var texts = Enum.GetValues<ChainError>().Select(ChainErrors.Describe).ToList();
        Assert.Equal(texts.Count, texts.Distinct().Count());
        Assert.DoesNotContain(texts, t => t.StartsWith("unknown", StringComparison.Ordinal));
        Assert.StartsWith("unknown", ChainErrors.Describe((ChainError)99));
    }

    [Fact]
    public void Chain_built_from_buffers_sums_readable_and_writable_bytes()
    {
        GuestBuffer[] buffers = [new(0x1000, 10, false), new(0x2000, 20, false), new(0x3000, 5, true)];
        var chain = new DescriptorChain(3, buffers);
        Assert.Equal(3, chain.HeadIndex);
        Assert.Equal(30UL, chain.ReadableLength);
        Assert.Equal(5UL, chain.WritableLength);
        Assert.Equal(3, chain.Buffers.Length);
    }
}
