using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>
/// Durability by an fsync of every chunk file published (or relied on) since the last sync, then
/// an fsync of the chunk directory. Portable (no syncfs), and every durability point is a call on
/// a file or directory that a file system underneath can see, which is what a power-loss test
/// harness needs. Costs one fsync per new chunk at each sync.
/// </summary>
internal sealed class FsyncEachDurability(string chunksPath) : ChunkDurability(chunksPath)
{
    private readonly object _pendingLock = new();
    private HashSet<string> _pending = new(StringComparer.Ordinal);

    protected override void Remember(string path)
    {
        lock (_pendingLock) _pending.Add(path);
    }

    protected override void SyncPublished()
    {
        HashSet<string> batch;
        lock (_pendingLock) (batch, _pending) = (_pending, new HashSet<string>(StringComparer.Ordinal));
        try
        {
            foreach (string path in batch)
            {
                try { FileSync.FsyncFile(path); }
                catch (IOException) when (!File.Exists(path)) { } // collected meanwhile: nothing to keep
            }
            FileSync.FsyncDirectory(ChunksPath);
        }
        catch
        {
            lock (_pendingLock) _pending.UnionWith(batch);
            throw;
        }
    }
}
