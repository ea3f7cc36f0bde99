namespace ShuruStore.Core.Storage;

/// <summary>How a <see cref="FileChunkStore"/> makes the chunks it published durable.</summary>
public enum ChunkDurabilityMode
{
    /// <summary><see cref="SyncFs"/> where the platform has syncfs (Linux), else <see cref="FsyncEach"/>.</summary>
    Auto,
    /// <summary>One <c>syncfs</c> of the store's filesystem and an fsync of the chunk directory per
    /// sync: cheap for many small files, but invisible to a file system that only sees per-file calls.</summary>
    SyncFs,
    /// <summary>An fsync of every chunk file published (or relied on) since the last sync, then of
    /// the chunk directory: the portable way, and one a file system below can observe call by call.</summary>
    FsyncEach,
}

/// <summary>
/// The durability side of a <see cref="FileChunkStore"/>: it is told about every name published
/// (or found and relied on), and <see cref="Sync"/> makes all of them durable, content and name.
/// <para>Fail-stop: once a sync failed, every later one fails too. Linux reports a writeback
/// error to a descriptor once and marks the pages clean, so a second sync would succeed over
/// chunks whose content never reached the disk while their only other copy (a dirty buffer) is
/// gone: a later FLUSH would then promise lost data. Reopening the store starts over (its
/// writers verify any name they did not write before relying on it).</para>
/// </summary>
internal abstract class ChunkDurability : IDisposable
{
    private readonly object _syncLock = new();
    private Exception? _failure;
    // Generations: bumped after every name published (or found and relied on); a sync records
    // the generation it covers, so a name published while a sync runs is covered by the next.
    private long _publishedGen, _syncedGen;

    protected ChunkDurability(string chunksPath) => ChunksPath = chunksPath;

    /// <summary>The chunk directory.</summary>
    protected string ChunksPath { get; }

    /// <summary>Runs after a sync failed (the store forgets what it trusted since the last good one).</summary>
    public Action? OnFailure { get; set; }

    /// <summary>Test hook: runs inside <see cref="Sync"/> before the real work (a throw is a failed sync).</summary>
    public Action? Fault { get; set; }

    /// <summary>A name was published at <paramref name="path"/> or found there and relied on
    /// (perhaps a concurrent writer's, not synced yet): the next <see cref="Sync"/> covers it.</summary>
    public void Published(string path)
    {
        Remember(path);
        Interlocked.Increment(ref _publishedGen);
    }

    /// <summary>Makes everything published so far durable. Serialised: a second caller must not
    /// return while the first caller's sync, which covers its chunks too, is still running.</summary>
    public void Sync()
    {
        lock (_syncLock)
        {
            if (_failure is { } failed)
                throw new IOException($"an earlier sync of chunk store '{Path.GetDirectoryName(ChunksPath)}' failed ({failed.Message}): chunks stored before it may be lost, so nothing more can be made durable until the store is opened again", failed);
            long generation = Interlocked.Read(ref _publishedGen);
            if (generation == _syncedGen) return;
            try
            {
                Fault?.Invoke();
                SyncPublished();
            }
            catch (Exception e)
            {
                _failure = e;
                OnFailure?.Invoke();
                throw;
            }
            _syncedGen = generation;
        }
    }

    /// <summary>Whether a sync already failed (nothing more can be made durable).</summary>
    protected bool Failed => Volatile.Read(ref _failure) is not null;

    /// <summary>Notes a published path for <see cref="SyncPublished"/>.</summary>
    protected abstract void Remember(string path);

    /// <summary>Makes every remembered name and its content durable.</summary>
    protected abstract void SyncPublished();

    /// <summary>A writer that will sync soon has stored another <paramref name="bytes"/> of new
    /// chunks: the mode may start moving them to the disk in the background.</summary>
    public virtual void WillSyncSoon(long bytes) { }

    /// <summary>Syncs started in the background by <see cref="WillSyncSoon"/> so far (tests).</summary>
    public virtual long BackgroundSyncs => 0;

    public virtual void Dispose() { }

    /// <summary>The mode to use for <paramref name="mode"/> on this platform.</summary>
    public static ChunkDurability Create(ChunkDurabilityMode mode, string chunksPath) =>
        mode == ChunkDurabilityMode.FsyncEach || (mode == ChunkDurabilityMode.Auto && !Interop.FileSync.HasSyncFs)
            ? new FsyncEachDurability(chunksPath)
            : new SyncFsDurability(chunksPath);
}
