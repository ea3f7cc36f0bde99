namespace ShuruStore.Core.Storage;

/// <summary>How to open a <see cref="CowDisk"/>; mirrors shuru's
/// <c>start(rootfs_path, cas_dir, index_path, socket_path, disk_size)</c> plus our additions.</summary>
public sealed class CowDiskOptions
{
    /// <summary>The flat base image (shuru's rootfs_path), used in lazy mode or when the index names none.</summary>
    public string? BaseImagePath { get; init; }
    /// <summary>The chunk store directory (holds <c>chunks/</c>).</summary>
    public required string CasPath { get; init; }
    /// <summary>Boot from this index if it exists; else lazy mode on the base.</summary>
    public string? IndexPath { get; init; }
    /// <summary>&gt;0 grows the disk to this size (never shrinks).</summary>
    public long DiskSize { get; init; }
    /// <summary>Live-state journal; with it, a restart resumes exactly where the last flush left off.</summary>
    public string? StatePath { get; init; }
    /// <summary>Refuse writes; never writes the store, the base or the state file.</summary>
    public bool ReadOnly { get; init; }
    /// <summary>Bytes of unsaved writes held in memory before chunks are hashed and stored early.</summary>
    public long DirtyBudgetBytes { get; init; } = 256L * 1024 * 1024;
    /// <summary>How the <see cref="FileChunkStore"/> opened on <see cref="CasPath"/> makes chunks
    /// durable (ignored with <see cref="ChunkStore"/>).</summary>
    public ChunkDurabilityMode Durability { get; init; } = ChunkDurabilityMode.Auto;
    /// <summary>Who this disk registers as in the store it opens (with its state file, booted index
    /// and base filled in), so collectors in any process keep its chunks; null: no registration
    /// (ignored with <see cref="ChunkStore"/>).</summary>
    public StoreHolder? Holder { get; init; } = new("disk");
    /// <summary>Chunk store to use instead of a <see cref="FileChunkStore"/> on <see cref="CasPath"/>
    /// (e.g. a caching or remote store). The disk does not dispose it.</summary>
    public IChunkStore? ChunkStore { get; init; }
    /// <summary>The directory relative parent and fallback paths stored in the index chain are
    /// first resolved against, as shuru does with its working directory
    /// (<see cref="IndexPathResolver"/>); null: the process current directory.</summary>
    public string? WorkingDirectory { get; init; }
    /// <summary>Serve an index whose chain stops at a parent that does not exist, reading what
    /// the rest of the chain holds (chunks set only in the missing parent read from the base
    /// image or as zeros, as in shuru). Otherwise opening refuses it with
    /// <see cref="ShuruErrorKind.ParentIndexMissing"/>.</summary>
    public bool AllowMissingParent { get; init; }
}

/// <summary>What <see cref="CowDisk.SaveCheckpoint"/> wrote.</summary>
public sealed record CheckpointInfo(
    string Path, string? ParentPath, string? FallbackPath, long DiskSize, long ChunkCount,
    long ChunksSet, long ZeroEntries)
{
    /// <summary>The saved index with its chain as the disk holds it (no need to read the file back).</summary>
    public IndexChain? Chain { get; init; }
}

/// <summary>Counters of a running <see cref="CowDisk"/>. <c>ChunksSpilled</c>: moves of a dirty
/// chunk out of memory into the spill file (over the dirty budget); <c>DirtyChunks</c>: unsaved
/// chunks, in memory (<c>DirtyBytes</c>) or in the spill file (<c>SpilledChunks</c>).</summary>
public readonly record struct CowDiskStatistics(
    long ChunksWritten, long ChunksIngested, long ChunksSpilled, long DirtyBytes, long DirtyChunks, long SpilledChunks);
