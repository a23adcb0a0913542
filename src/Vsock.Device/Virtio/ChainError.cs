namespace Vsock.Device.Virtio;

/// <summary>Why a descriptor chain the guest made available was rejected (virtio 1.2 §2.7.5 rules).</summary>
public enum ChainError
{
    None = 0,
    /// <summary>The avail ring names a head index &gt;= queue size.</summary>
    HeadIndexOutOfRange,
    /// <summary>A <c>next</c> field points outside the descriptor table (or the indirect table).</summary>
    NextIndexOutOfRange,
    /// <summary>More descriptors than the table holds: a loop, or a chain longer than the queue size / indirect table.</summary>
    ChainTooLong,
    /// <summary>The buffers add up to more than <see cref="uint.MaxValue"/> bytes (the used ring's length field).</summary>
    TotalLengthOverflow,
    /// <summary>An indirect table contains an INDIRECT descriptor.</summary>
    IndirectNested,
    /// <summary>A descriptor has both INDIRECT and NEXT.</summary>
    IndirectWithNext,
    /// <summary>Indirect table length is 0, not a multiple of 16, or above <see cref="SplitQueue.MaxIndirectEntries"/> entries.</summary>
    IndirectTableBadLength,
    /// <summary>INDIRECT used although VIRTIO_F_INDIRECT_DESC was not negotiated.</summary>
    IndirectNotNegotiated,
    /// <summary>A device-readable descriptor follows a device-writable one.</summary>
    ReadableAfterWritable,
    /// <summary>A buffer or an indirect table does not lie inside one guest memory region.</summary>
    AddressOutOfRange,
}

public static class ChainErrors
{
    /// <summary>A log-friendly sentence for <paramref name="error"/>.</summary>
    public static string Describe(ChainError error) => error switch
    {
        ChainError.None => "no error",
        ChainError.HeadIndexOutOfRange => "The avail ring names a head descriptor index beyond the queue size.",
        ChainError.NextIndexOutOfRange => "A descriptor's next index is beyond its descriptor table.",
        ChainError.ChainTooLong => "The descriptor chain loops or is longer than its descriptor table.",
        ChainError.TotalLengthOverflow => "The descriptor chain's buffers add up to more than 4 GiB.",
        ChainError.IndirectNested => "An indirect descriptor table contains another indirect descriptor.",
        ChainError.IndirectWithNext => "A descriptor has both the INDIRECT and the NEXT flag.",
        ChainError.IndirectTableBadLength => "An indirect descriptor table has a length that is zero, not a multiple of 16 or too large.",
        ChainError.IndirectNotNegotiated => "The guest used an indirect descriptor without negotiating VIRTIO_F_INDIRECT_DESC.",
        ChainError.ReadableAfterWritable => "A device-readable descriptor follows a device-writable one.",
        ChainError.AddressOutOfRange => "A descriptor buffer or indirect table lies outside guest memory.",
        _ => $"unknown descriptor chain error {(int)error}",
    };
}
