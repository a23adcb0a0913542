namespace Vsock.Testing;

/// <summary>
/// One descriptor of a hand-made TX chain for <see cref="SyntheticGuest.SendRawTx"/>. Anything
/// goes: any address (inside RAM or not), length and flags. <see cref="Next"/> names another entry
/// of the same chain array (so loops can be built); with <see cref="NextIsAbsolute"/> it is written
/// to the descriptor table as it is (an index the chain does not own, or beyond the queue).
/// </summary>
public readonly record struct RawDescriptor(ulong Address, uint Length, ushort Flags, ushort Next = 0, bool NextIsAbsolute = false)
{
    public const ushort FlagNext = 1;
    public const ushort FlagWrite = 2;
    public const ushort FlagIndirect = 4;

    /// <summary>A device-readable descriptor, chained to entry <paramref name="next"/> of the chain when given.</summary>
    public static RawDescriptor Readable(ulong address, uint length, int? next = null) =>
        new(address, length, next is null ? (ushort)0 : FlagNext, (ushort)(next ?? 0));

    /// <summary>A device-writable descriptor (wrong direction on TX).</summary>
    public static RawDescriptor Writable(ulong address, uint length, int? next = null) =>
        new(address, length, (ushort)(FlagWrite | (next is null ? 0 : FlagNext)), (ushort)(next ?? 0));
}
