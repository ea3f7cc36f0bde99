using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace ShuruStore.Core.Storage;

/// <summary>
/// The name of a chunk: BLAKE3-256 of its exact bytes. A 32-byte value type so index maps of
/// tens of thousands of entries stay compact and comparisons never allocate. Its text form
/// (64 lowercase hex) is used as a file name, so parsing is strict: anything else is rejected,
/// which is what keeps a hostile index from smuggling "../" into a path.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public readonly struct ChunkHash : IEquatable<ChunkHash>
{
    /// <summary>Size of a hash in bytes.</summary>
    public const int Size = 32;
    /// <summary>Length of the text form.</summary>
    public const int HexLength = 64;

    private readonly ulong _a, _b, _c, _d; // big-endian words so ordering matches the hex text

    private ChunkHash(ulong a, ulong b, ulong c, ulong d) { _a = a; _b = b; _c = c; _d = d; }

    /// <summary>BLAKE3 of 65536 zero bytes: what a zeroed chunk is recorded as. Never read
    /// from disk (it is synthesised), but its file is written once so shuru can read it.</summary>
    public static readonly ChunkHash ZeroChunk = Parse("3bdeaf8f8e98780b318106aafdc3ca257f73df123d97b69112b26044c91a7d56");

    /// <summary>Builds a hash from its 32 raw bytes.</summary>
    public static ChunkHash FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size) throw new ArgumentException("A chunk hash is 32 bytes.", nameof(bytes));
        return new ChunkHash(
            BinaryPrimitives.ReadUInt64BigEndian(bytes),
            BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(bytes[16..]),
            BinaryPrimitives.ReadUInt64BigEndian(bytes[24..]));
    }

    /// <summary>Writes the 32 raw bytes.</summary>
    public void CopyTo(Span<byte> dest)
    {
        BinaryPrimitives.WriteUInt64BigEndian(dest, _a);
        BinaryPrimitives.WriteUInt64BigEndian(dest[8..], _b);
        BinaryPrimitives.WriteUInt64BigEndian(dest[16..], _c);
        BinaryPrimitives.WriteUInt64BigEndian(dest[24..], _d);
    }

    /// <summary>The 32 raw bytes.</summary>
    public byte[] ToBytes() { var b = new byte[Size]; CopyTo(b); return b; }

    /// <summary>Whether this is the hash of the 64 KiB all-zero chunk.</summary>
    public bool IsZeroChunk => Equals(ZeroChunk);

    /// <summary>Parses exactly 64 lowercase hex characters; anything else is rejected.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out ChunkHash hash)
    {
        hash = default;
        if (text.Length != HexLength) return false;
        Span<byte> raw = stackalloc byte[Size];
        for (int i = 0; i < Size; i++)
        {
            int hi = Nibble(text[2 * i]), lo = Nibble(text[2 * i + 1]);
            if ((hi | lo) < 0) return false;
            raw[i] = (byte)((hi << 4) | lo);
        }
        hash = FromBytes(raw);
        return true;
    }

    /// <summary>Parses exactly 64 lowercase hex ASCII bytes (as stored in an index).</summary>
    public static bool TryParseUtf8(ReadOnlySpan<byte> text, out ChunkHash hash)
    {
        hash = default;
        if (text.Length != HexLength) return false;
        // Vectorised hex decoding; it also accepts upper case, which a chunk name must not use.
        if (text.IndexOfAnyInRange((byte)'A', (byte)'F') >= 0) return false;
        Span<byte> raw = stackalloc byte[Size];
        if (Convert.FromHexString(text, raw, out _, out int written) != System.Buffers.OperationStatus.Done || written != Size) return false;
        hash = FromBytes(raw);
        return true;
    }

    /// <summary>Parses 64 lowercase hex characters or throws <see cref="FormatException"/>.</summary>
    public static ChunkHash Parse(string text) =>
        TryParse(text, out var h) ? h : throw new FormatException("A chunk hash is exactly 64 lowercase hex characters.");

    // Only 0-9 and a-f: uppercase would name a different file on a case-sensitive filesystem.
    private static int Nibble(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        _ => -1,
    };

    /// <summary>Writes the 64 lowercase hex ASCII bytes.</summary>
    public void FormatUtf8(Span<byte> dest)
    {
        Span<byte> raw = stackalloc byte[Size];
        CopyTo(raw);
        if (!Convert.TryToHexStringLower(raw, dest[..HexLength], out _))
            throw new ArgumentException("the destination needs 64 bytes", nameof(dest));
    }

    /// <summary>The 64 lowercase hex characters (the chunk's file name).</summary>
    public override string ToString()
    {
        Span<byte> raw = stackalloc byte[Size];
        CopyTo(raw);
        return Convert.ToHexStringLower(raw);
    }

    public bool Equals(ChunkHash other) => _a == other._a && _b == other._b && _c == other._c && _d == other._d;
    public override bool Equals(object? obj) => obj is ChunkHash h && Equals(h);
    public override int GetHashCode() => HashCode.Combine(_a, _d);
    public static bool operator ==(ChunkHash l, ChunkHash r) => l.Equals(r);
    public static bool operator !=(ChunkHash l, ChunkHash r) => !l.Equals(r);
}
