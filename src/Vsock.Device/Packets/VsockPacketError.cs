namespace Vsock.Device.Packets;

/// <summary>Why a descriptor chain is not a usable vsock packet (the virtio-vsock crate's <c>Error</c>, minus fragmentation).</summary>
public enum VsockPacketError
{
    None = 0,
    /// <summary>The chain has no descriptors.</summary>
    DescriptorChainTooShort,
    /// <summary>The chain's bytes cannot hold the 44-byte header (plus, on TX, the header's <c>len</c> payload bytes).</summary>
    DescriptorLengthTooSmall,
    /// <summary>The chain's bytes add up to more than 4 GiB (only possible for chains not built by <c>SplitQueue</c>).</summary>
    DescriptorLengthTooLong,
    /// <summary>TX header <c>len</c> above the TX buffer size or <see cref="VsockConstants.MaxPacketPayload"/>.</summary>
    InvalidHeaderLen,
    /// <summary>An RX chain has a device-readable descriptor.</summary>
    UnexpectedReadOnlyDescriptor,
    /// <summary>A TX chain has a device-writable descriptor.</summary>
    UnexpectedWriteOnlyDescriptor,
    /// <summary>A header or payload byte of the chain is outside guest memory.</summary>
    InvalidMemoryAccess,
    /// <summary>A raw header is not exactly 44 bytes.</summary>
    InvalidHeaderInputSize,
}

public static class VsockPacketErrors
{
    /// <summary>The crate's Display strings (reference §3.2), without the values the crate embeds.</summary>
    public static string Describe(VsockPacketError error) => error switch
    {
        VsockPacketError.None => "no error",
        VsockPacketError.DescriptorChainTooShort => "There are not enough descriptors in the chain.",
        VsockPacketError.DescriptorLengthTooSmall => "The descriptor is pointing to a buffer that has a smaller length than expected.",
        VsockPacketError.DescriptorLengthTooLong => "The descriptor is pointing to a buffer that has a longer length than expected.",
        VsockPacketError.InvalidHeaderLen => "Invalid header `len` field value.",
        VsockPacketError.UnexpectedReadOnlyDescriptor => "Unexpected read-only descriptor.",
        VsockPacketError.UnexpectedWriteOnlyDescriptor => "Unexpected write-only descriptor.",
        VsockPacketError.InvalidMemoryAccess => "Invalid guest memory access.",
        VsockPacketError.InvalidHeaderInputSize => "Invalid header input size.",
        _ => $"Unknown vsock packet error {(int)error}.",
    };
}
