namespace ShuruStore.Core.Storage;

/// <summary>
/// The live map made durable at every flush (<see cref="CowDiskOptions.StatePath"/>): the live
/// entries changed since the last flush are appended to the <see cref="StateJournal"/> only after
/// the chunks they name are durable, and past a few times the map's size the journal is
/// rewritten as one snapshot, so compaction costs little compared to the appends it saves.
/// </summary>
internal sealed class LiveStateJournal(StateJournal journal, StateJournal.Header header, long compactAfterRecords) : IDisposable
{
    /// <summary>Journal length (records) past which it is rewritten as a snapshot.</summary>
    public long CompactAfterRecords { get; set; } = compactAfterRecords;

    /// <summary>Appends the live entries changed since the last commit (their chunks must be
    /// durable already), compacting when the journal has grown long.</summary>
    public void Append(List<(long Chunk, ChunkHash? Entry)> records, ChunkTable table, IChunkStore store)
    {
        if (records.Count == 0) return;
        journal.Append(records);
        if (journal.RecordCount > CompactAfterRecords) Compact(table, store);
    }

    private void Compact(ChunkTable table, IChunkStore store)
    {
        var snapshot = table.DiffFromBoot().ToList();
        store.Sync(); // entries stored since the last sync may appear in the snapshot
        journal.Compact(header, snapshot);
    }

    /// <summary>Releases the file without writing anything (a simulated crash).</summary>
    public void Abandon() => journal.Abandon();

    public void Dispose() => journal.Dispose();
}
