namespace ShuruStore.Core.Storage;

/// <summary>Names chunks: BLAKE3-256 of the exact stored bytes, as shuru does.</summary>
public static class ChunkHasher
{
    /// <summary>Chunk size used by shuru's index format.</summary>
    public const int ChunkSize = 65536;

    /// <summary>BLAKE3-256 of <paramref name="data"/>.</summary>
    public static ChunkHash Hash(ReadOnlySpan<byte> data)
    {
        Span<byte> output = stackalloc byte[ChunkHash.Size];
        Blake3.Hasher.Hash(data, output);
        return ChunkHash.FromBytes(output);
    }

    /// <summary>Whether every byte is zero (vectorised; used to keep zero chunks out of the store).</summary>
    public static bool IsAllZero(ReadOnlySpan<byte> data) => !data.ContainsAnyExcept((byte)0);
}
