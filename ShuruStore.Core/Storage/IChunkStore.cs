namespace ShuruStore.Core.Storage;

/// <summary>
/// A content-addressed chunk store. Deliberately small so a remote (S3) store, a caching
/// store or a tiered store can be chained in front of or behind the file store without the
/// disk or the protocol code knowing. Chunks are immutable: a name always means the same bytes.
/// </summary>
public interface IChunkStore : IDisposable
{
    /// <summary>Whether a chunk with this name is present (no content check).</summary>
    bool Contains(ChunkHash hash);

    /// <summary>Reads a chunk into <paramref name="destination"/> (at least 65536 bytes),
    /// zero-filling a short chunk up to 64 KiB. Returns false if the chunk is absent.
    /// The content is verified against the name: a mismatch throws
    /// <see cref="ShuruStoreException"/> with <see cref="ShuruErrorKind.ChunkCorrupt"/>.</summary>
    bool TryRead(ChunkHash hash, Span<byte> destination, out int storedLength);

    /// <summary>Stores a chunk under its name. Write-once and idempotent: an existing chunk is
    /// never rewritten. Returns true if this call created it.</summary>
    bool Write(ChunkHash hash, ReadOnlySpan<byte> data);

    /// <summary>Reads <c>destination.Length</c> bytes at <paramref name="offset"/> within a chunk
    /// (zero-filled past a short chunk's end). Verified like <see cref="TryRead"/>; a store may
    /// skip re-hashing a chunk it has verified and that has not changed since. False if absent.</summary>
    bool TryReadRange(ChunkHash hash, int offset, Span<byte> destination)
    {
        byte[] whole = System.Buffers.ArrayPool<byte>.Shared.Rent(ChunkHasher.ChunkSize);
        try
        {
            if (!TryRead(hash, whole.AsSpan(0, ChunkHasher.ChunkSize), out _)) return false;
            whole.AsSpan(offset, destination.Length).CopyTo(destination);
            return true;
        }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(whole); }
    }

    /// <summary>Reads a range of a chunk as <see cref="TryReadRange"/> would, but only when that
    /// needs no disk I/O (a chunk already verified, whose bytes are in the page cache). False when
    /// it would have to wait, or the store cannot tell: the caller then uses
    /// <see cref="TryReadRange"/>, and <paramref name="destination"/> is undefined.</summary>
    bool TryReadRangeNoWait(ChunkHash hash, int offset, Span<byte> destination) => false;

    /// <summary>Stores several chunks, each as <see cref="Write"/> would (write-once, idempotent).
    /// An implementation may leave durability to the next <see cref="Sync"/> (FileChunkStore
    /// does: one syncfs per flush), so callers reference the chunks only after a Sync; a name
    /// only ever appears over complete content. <paramref name="stored"/>[i] becomes true
    /// once chunk i is present (created or already there). Returns how many this call created.
    /// A failure is thrown after the chunks that could be stored are; the others may be written again.
    /// <paramref name="syncSoon"/>: the caller will <see cref="Sync"/> these before long (a write
    /// stream that a FLUSH follows), so the store may start moving them to the disk right away.</summary>
    int WriteMany(IReadOnlyList<(ChunkHash Hash, ReadOnlyMemory<byte> Data)> chunks, bool[] stored, bool syncSoon = false) =>
        ChunkStoreExtensions.WriteEach(this, chunks, stored);

    /// <summary>Makes every chunk written so far durable (including its directory entry).</summary>
    void Sync();

    /// <summary>Names of every stored chunk.</summary>
    IEnumerable<ChunkHash> Enumerate();
}

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

    /// <summary><see cref="IChunkStore.WriteMany"/> one <see cref="IChunkStore.Write"/> at a time,
    /// trying every chunk before throwing the first failure.</summary>
    public static int WriteEach(IChunkStore store, IReadOnlyList<(ChunkHash Hash, ReadOnlyMemory<byte> Data)> chunks, bool[] stored)
    {
        int created = 0;
        Exception? first = null;
        for (int i = 0; i < chunks.Count; i++)
        {
            try
            {
                if (store.Write(chunks[i].Hash, chunks[i].Data.Span)) created++;
                stored[i] = true;
            }
            catch (Exception e) { first ??= e; }
        }
        if (first is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
        return created;
    }
}
