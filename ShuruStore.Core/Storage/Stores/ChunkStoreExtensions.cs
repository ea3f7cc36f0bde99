namespace ShuruStore.Core.Storage;

/// <summary>Convenience operations on any <see cref="IChunkStore"/>.</summary>
public static class ChunkStoreExtensions
{
    /// <summary>Reads a chunk or throws <see cref="ShuruErrorKind.ChunkMissing"/>; a missing chunk
    /// never reads as zeros (that was a shuru defect).</summary>
    public static int Read(this IChunkStore store, ChunkHash hash, Span<byte> destination)
    {
        if (!store.TryRead(hash, destination, out int len))
            throw new ShuruStoreException(ShuruErrorKind.ChunkMissing, $"chunk {hash} is missing from the chunk store");
        return len;
    }

    /// <summary>Stores one chunk through <see cref="IChunkStore.WriteMany"/> (durable at the next
    /// Sync). Returns true if this call created it.</summary>
    public static bool Write(this IChunkStore store, ChunkHash hash, ReadOnlySpan<byte> data)
    {
        var stored = new bool[1];
        return store.WriteMany([(hash, data.ToArray())], stored) == 1;
    }
}
