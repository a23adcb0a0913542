using System.Buffers.Binary;

namespace Vsock.Fuzz;

/// <summary>
/// Reads a fuzz input front to back. Every byte string is a valid input: reads past the end return zeros and
/// empty spans, so a mutated input still decodes (to something shorter), and the decoders never reject.
/// </summary>
internal ref struct FuzzInput(ReadOnlySpan<byte> bytes)
{
    private ReadOnlySpan<byte> _rest = bytes;

    public readonly bool IsEmpty => _rest.IsEmpty;
    public readonly int Remaining => _rest.Length;

    public byte U8()
    {
        if (_rest.IsEmpty)
            return 0;
        var b = _rest[0];
        _rest = _rest[1..];
        return b;
    }

    public ushort U16()
    {
        Span<byte> b = stackalloc byte[2];
        Fill(b);
        return BinaryPrimitives.ReadUInt16LittleEndian(b);
    }

    public uint U32()
    {
        Span<byte> b = stackalloc byte[4];
        Fill(b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public ulong U64()
    {
        Span<byte> b = stackalloc byte[8];
        Fill(b);
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    /// <summary>Up to <paramref name="count"/> bytes (fewer at the end of the input).</summary>
    public ReadOnlySpan<byte> Bytes(int count)
    {
        var n = Math.Min(Math.Max(count, 0), _rest.Length);
        var taken = _rest[..n];
        _rest = _rest[n..];
        return taken;
    }

    public ReadOnlySpan<byte> Rest()
    {
        var rest = _rest;
        _rest = default;
        return rest;
    }

    /// <summary>Fills <paramref name="buffer"/> with the next bytes, zero-padded past the end of the input.</summary>
    private void Fill(scoped Span<byte> buffer)
    {
        var taken = Bytes(buffer.Length);
        taken.CopyTo(buffer);
        buffer[taken.Length..].Clear();
    }
}

/// <summary>Builds inputs in the format <see cref="FuzzInput"/> reads (seed corpora, tests).</summary>
internal sealed class FuzzInputWriter
{
    private readonly List<byte> _bytes = [];

    public FuzzInputWriter U8(int value)
    {
        _bytes.Add((byte)value);
        return this;
    }

    public FuzzInputWriter U16(int value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)value);
        return Bytes(b);
    }

    public FuzzInputWriter U32(uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        return Bytes(b);
    }

    public FuzzInputWriter U64(ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        return Bytes(b);
    }

    public FuzzInputWriter Bytes(ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
            _bytes.Add(b);
        return this;
    }

    public byte[] ToArray() => [.. _bytes];
}
