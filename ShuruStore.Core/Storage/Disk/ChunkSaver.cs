namespace ShuruStore.Core.Storage;

/// <summary>
/// Turns unsaved chunks (dirty buffers, spilled chunks) into stored chunks and live entries, a
/// batch at a time (<see cref="IChunkStore.WriteMany"/>); a Sync of the store then makes them
/// durable. A failed batch keeps every chunk it did not store, in memory or in the spill file
/// (shuru dropped every remaining unsaved chunk).
/// </summary>
internal sealed class ChunkSaver(ChunkTable table, IChunkStore store, SpillArea spill, ChunkBufferPool pool, string casPath)
{
    private const int CS = ChunkHasher.ChunkSize;
    private static readonly byte[] ZeroBuffer = new byte[CS];

    /// <summary>Chunks per batch: large enough that the store's per-batch costs vanish, small
    /// enough that a batch holds few stripes.</summary>
    public const int BatchChunks = 128;

    private long _created;
    private int _zeroChunkStored;

    /// <summary>Chunk files this disk created so far.</summary>
    public long ChunksCreated => Interlocked.Read(ref _created);

    /// <summary>Stores every unsaved chunk. <paramref name="parallel"/>: a few batches at once, so
    /// hashing and writing overlap the syncs. Never parallel while this thread holds stripe locks
    /// (the helpers would wait for them forever).</summary>
    public void StoreAll(bool parallel) => StoreBatches(table.UnsavedChunks(), parallel);

    /// <summary>Stores the unsaved chunks of [first, end).</summary>
    public void StoreRange(long first, long end) => StoreBatches(table.UnsavedChunks(first, end), parallel: false);

    private void StoreBatches(List<long> chunks, bool parallel)
    {
        Exception? first = null;
        var batches = new List<List<long>>();
        for (int i = 0; i < chunks.Count; i += BatchChunks)
            batches.Add(chunks.GetRange(i, Math.Min(BatchChunks, chunks.Count - i)));
        if (parallel && batches.Count > 1)
        {
            Parallel.ForEach(batches, new ParallelOptions { MaxDegreeOfParallelism = 4 }, batch =>
            {
                try { StoreBatch(batch); }
                catch (Exception e) { Interlocked.CompareExchange(ref first, e, null); }
            });
        }
        else
        {
            foreach (var batch in batches)
            {
                try { StoreBatch(batch); }
                catch (Exception e) { first ??= e; } // keep going: one bad batch does not drop the others
            }
        }
        if (first is not null) throw first;
    }

    /// <summary>Hashes and stores a batch of unsaved chunks and records them in the live map.
    /// Holds the batch's stripes (ascending, as a checkpoint takes them) so no write changes a
    /// buffer between hashing and recording; until its name exists a chunk reads from its dirty
    /// buffer. A chunk with nothing unsaved any more is skipped.</summary>
    public void StoreBatch(IReadOnlyList<long> chunks)
    {
        var scratch = new List<byte[]>();
        using var held = table.HoldStripesOf(chunks);
        try
        {
            var items = new List<(long Chunk, ChunkHash? Entry, int Batch, bool Spilled)>(chunks.Count);
            var batch = new List<(ChunkHash, ReadOnlyMemory<byte>)>(chunks.Count);
            foreach (var chunk in chunks)
            {
                var place = table.Resolve(chunk);
                byte[] buf;
                if (place.Kind == ChunkPlaceKind.Dirty) buf = place.Buffer!;
                else if (place.Kind == ChunkPlaceKind.Spilled)
                {
                    // Read back into a scratch buffer for hashing and storing; the chunk stays in
                    // the spill file until stored, so a failure keeps it there (memory stays bounded).
                    buf = pool.Rent();
                    scratch.Add(buf);
                    spill.ReadRange(chunk, place.SpilledBlocks, 0, buf.AsSpan(0, CS));
                }
                else continue;
                if (ChunkHasher.IsAllZero(buf.AsSpan(0, CS)))
                {
                    bool through = table.ShowsThrough(chunk);
                    if (through) EnsureZeroChunkStored();
                    items.Add((chunk, through ? ChunkHash.ZeroChunk : null, -1, place.Kind == ChunkPlaceKind.Spilled));
                }
                else
                {
                    // Always a full 64 KiB chunk (also at the end of an odd-sized disk), as shuru writes them.
                    var h = ChunkHasher.Hash(buf.AsSpan(0, CS));
                    items.Add((chunk, h, batch.Count, place.Kind == ChunkPlaceKind.Spilled));
                    batch.Add((h, buf.AsMemory(0, CS)));
                }
            }
            var stored = new bool[batch.Count];
            Exception? failure = null;
            if (batch.Count > 0)
            {
                try { Interlocked.Add(ref _created, store.WriteMany(batch, stored, syncSoon: true)); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                { failure = DiskErrors.StoreFailure(e, $"cannot store {batch.Count - stored.Count(x => x)} chunk(s) (disk chunks {items[0].Chunk}..{items[^1].Chunk}) in '{casPath}'"); }
            }
            // Record what is stored; a chunk that failed keeps its dirty buffer or spill-file copy.
            foreach (var (chunk, entry, bi, spilled) in items)
            {
                if (bi >= 0 && !stored[bi]) continue;
                table.SetLive(chunk, entry);
                if (spilled)
                {
                    table.RemoveSpilled(chunk);
                    spill.Release(chunk);
                }
                else if (table.RemoveDirty(chunk) is { } buf) pool.Return(buf);
            }
            if (failure is not null) throw failure;
        }
        finally
        {
            foreach (var b in scratch) pool.Return(b);
        }
    }

    /// <summary>The zero chunk is never read from disk, but shuru reads every named chunk, so its
    /// file is written once before any index can name it.</summary>
    public void EnsureZeroChunkStored()
    {
        if (Volatile.Read(ref _zeroChunkStored) != 0) return;
        try { store.Write(ChunkHash.ZeroChunk, ZeroBuffer); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw DiskErrors.StoreFailure(e, $"cannot store the zero chunk {ChunkHash.ZeroChunk}"); }
        Volatile.Write(ref _zeroChunkStored, 1);
    }
}
