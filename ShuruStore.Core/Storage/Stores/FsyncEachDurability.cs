using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>
/// Durability by an fsync of every chunk file published (or relied on) since the last sync, then
/// an fsync of the chunk directory. Portable (no syncfs), and every durability point is a call on
/// a file or directory that a file system underneath can see, which is what a power-loss test
/// harness needs. Costs one fsync per new chunk at each sync.
/// </summary>
internal sealed class FsyncEachDurability : ChunkDurability
{
    private readonly object _pendingLock = new();
    private HashSet<string> _pending = new(StringComparer.Ordinal);

    /// <summary>The store's directories may have just been created: their entries are made
    /// durable (chunk directory, store root, and the root's parent) before any chunk can be
    /// referenced, since no syncfs will cover them later.</summary>
    public FsyncEachDurability(string chunksPath) : base(chunksPath)
    {
        FileSync.FsyncDirectory(chunksPath);
        string root = Path.GetDirectoryName(chunksPath)!;
        FileSync.FsyncDirectory(root);
        if (Path.GetDirectoryName(root) is { } parent)
        {
            try { FileSync.FsyncDirectory(parent); }
            catch (IOException) { } // a parent we may not open (no read permission): its entry predates us
        }
    }

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
