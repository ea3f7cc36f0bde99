using System.Buffers.Binary;

namespace ShuruStore.Core.Remote;

/// <summary>
/// The name of a pack: the first 128 bits of the BLAKE3 of its header, written as 32 lowercase
/// hex characters. The header lists the pack's chunks (hashes and lengths), so the same chunks in
/// the same order always make the same pack: an interrupted upload that is run again builds the
/// packs it already uploaded under the same names and finds them there.
/// </summary>
public readonly struct PackId : IEquatable<PackId>
{
    /// <summary>Bytes of an id.</summary>
    public const int Size = 16;
    /// <summary>Characters of the text form.</summary>
    public const int HexLength = 32;

    private readonly ulong _a, _b;

    private PackId(ulong a, ulong b) { _a = a; _b = b; }

    /// <summary>An id from its 16 raw bytes.</summary>
    public static PackId FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size) throw new ArgumentException("A pack id is 16 bytes.", nameof(bytes));
        return new PackId(BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]));
    }

    /// <summary>The id of a pack with this header: the first 16 bytes of its BLAKE3.</summary>
    public static PackId OfHeader(ReadOnlySpan<byte> header)
    {
        Span<byte> digest = stackalloc byte[32];
        Blake3.Hasher.Hash(header, digest);
        return FromBytes(digest[..Size]);
    }

    /// <summary>Writes the 16 raw bytes.</summary>
    public void CopyTo(Span<byte> dest)
    {
        BinaryPrimitives.WriteUInt64BigEndian(dest, _a);
        BinaryPrimitives.WriteUInt64BigEndian(dest[8..], _b);
    }

    /// <summary>Parses exactly 32 lowercase hex characters.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out PackId id)
    {
        id = default;
        if (text.Length != HexLength) return false;
        foreach (var c in text) if (c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f'))) return false;
        Span<byte> raw = stackalloc byte[Size];
        Convert.FromHexString(text, raw, out _, out _);
        id = FromBytes(raw);
        return true;
    }

    /// <summary>32 lowercase hex characters.</summary>
    public override string ToString()
    {
        Span<byte> raw = stackalloc byte[Size];
        CopyTo(raw);
        return Convert.ToHexStringLower(raw);
    }

    public bool Equals(PackId other) => _a == other._a && _b == other._b;
    public override bool Equals(object? obj) => obj is PackId p && Equals(p);
    public override int GetHashCode() => HashCode.Combine(_a, _b);
    public static bool operator ==(PackId l, PackId r) => l.Equals(r);
    public static bool operator !=(PackId l, PackId r) => !l.Equals(r);
}
