using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>
/// Durability by one <c>syncfs</c> of the chunk store's filesystem plus an fsync of the chunk
/// directory: far cheaper than an fsync per 64 KiB file. The directory descriptor it syncs
/// through is opened when the store opens, before any write, so syncfs reports every writeback
/// error since then (Linux reports them only to descriptors opened before the error).
/// <para>A stream's writer that will sync soon gets a background sync every
/// <see cref="EarlySyncBytes"/> of new chunks, so the disk writes the stream while it goes on
/// instead of all of it inside the FLUSH; a whole-filesystem sync, not a writeback per chunk
/// file, because the disk serves a few large merged requests far better than one per chunk.
/// Such a sync is an ordinary <see cref="ChunkDurability.Sync"/>: a failure is kept and the
/// FLUSH that follows reports it.</para>
/// </summary>
internal sealed class SyncFsDurability : ChunkDurability
{
    /// <summary>Bytes of new chunks after which a stream's writer starts a sync in the background.</summary>
    internal const long EarlySyncBytes = 64L << 20;

    private int _syncFd; // closed (and -1) after Dispose, under _fdLock
    private readonly object _fdLock = new();
    private long _unsyncedBytes, _earlySyncs;
    private int _earlySyncRunning;

    public SyncFsDurability(string chunksPath) : base(chunksPath) => _syncFd = FileSync.OpenForSyncFs(chunksPath);

    public override long BackgroundSyncs => Interlocked.Read(ref _earlySyncs);

    protected override void Remember(string path) { } // syncfs covers every file of the filesystem

    protected override void SyncPublished()
    {
        lock (_fdLock) { if (_syncFd >= 0) FileSync.SyncFileSystem(_syncFd, ChunksPath); }
        FileSync.FsyncDirectory(ChunksPath);
    }

    public override void WillSyncSoon(long bytes)
    {
        if (Interlocked.Add(ref _unsyncedBytes, bytes) < EarlySyncBytes) return;
        if (Interlocked.CompareExchange(ref _earlySyncRunning, 1, 0) != 0) return;
        Interlocked.Exchange(ref _unsyncedBytes, 0);
        Interlocked.Increment(ref _earlySyncs);
        // Its own thread, not the pool's: a syncfs blocks for a long time, and a blocked pool
        // thread on a small machine delays the requests and write-behind queued behind it.
        new Thread(() =>
        {
            try { if (Volatile.Read(ref _syncFd) >= 0) Sync(); }
            catch (Exception) { /* kept by Sync: the next Sync reports it; a background thread must not end the process */ }
            finally { Volatile.Write(ref _earlySyncRunning, 0); }
        }) { IsBackground = true, Name = "shuru-early-sync" }.UnsafeStart();
    }

    public override void Dispose()
    {
        lock (_fdLock)
        {
            if (_syncFd >= 0) FileDescriptors.Close(_syncFd);
            _syncFd = -1;
        }
    }
}
