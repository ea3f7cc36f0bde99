namespace ShuruStore.Core.Storage;

/// <summary>
/// Bounds the memory unsaved writes hold. Room is made before a write is applied: if chunks
/// cannot be moved out (disk full), the write fails before it changes anything, so memory stays
/// bounded while the disk is full and a failed write never reads back.
/// <para>Chunks still being written go to the spill file; chunks waiting for write-behind
/// (complete) are stored by the writer instead, since moving them would only add a copy out and
/// back in before the same store. At most two writers make room at once, on disjoint chunks; the
/// others wait, which is what bounds the memory.</para>
/// </summary>
internal sealed class DirtyBudget(long budget, ChunkTable table, ChunkSaver saver, SpillArea spill, WriteBehind writeBehind)
{
    private readonly SemaphoreSlim _gate = new(2, 2);

    /// <summary>Bytes of unsaved chunks allowed in memory.</summary>
    public long Bytes { get; } = budget;

    /// <summary>Makes room for a write of <paramref name="bytes"/>.</summary>
    public void MakeRoomFor(long bytes)
    {
        long need = Math.Min(bytes, Bytes);
        if (table.DirtyBytes + need > Bytes) Evict(Bytes - need);
    }

    private void Evict(long target)
    {
        _gate.Wait();
        try
        {
            while (table.DirtyBytes > target)
            {
                // Mostly complete chunks (a sequential stream): store first, without scanning the
                // dirty set past them.
                var claimed = new List<long>(ChunkSaver.BatchChunks);
                bool store = writeBehind.PendingCount * 2 >= table.DirtyCount && ClaimComplete(claimed);
                if (!store && !ClaimIncomplete(claimed)) store = ClaimComplete(claimed);
                if (claimed.Count == 0) return;
                try
                {
                    claimed.Sort();
                    if (store) saver.StoreBatch(claimed);
                    else spill.MoveToSpillFile(claimed);
                }
                finally { foreach (var c in claimed) table.Unclaim(c); }
            }
        }
        finally { _gate.Release(); }
    }

    /// <summary>Claims dirty chunks queued for write-behind (a stale queue entry, stored or zeroed
    /// since, is skipped: claiming it would make no room). True if any was claimed.</summary>
    private bool ClaimComplete(List<long> claimed)
    {
        foreach (var chunk in writeBehind.Pending)
        {
            if (claimed.Count >= ChunkSaver.BatchChunks) break;
            if (table.IsDirty(chunk) && table.TryClaim(chunk)) claimed.Add(chunk);
        }
        return claimed.Count > 0;
    }

    /// <summary>Claims dirty chunks not queued for write-behind. True if any was claimed.</summary>
    private bool ClaimIncomplete(List<long> claimed)
    {
        foreach (var chunk in table.DirtyChunks)
        {
            if (claimed.Count >= ChunkSaver.BatchChunks) break;
            if (!writeBehind.IsPending(chunk) && table.TryClaim(chunk)) claimed.Add(chunk);
        }
        return claimed.Count > 0;
    }
}
