namespace ShuruStore.Commands;

/// <summary>A checkpoint index file as Get-ShuruChunkIndex and Save-ShuruCheckpoint show it.</summary>
public sealed class ShuruChunkIndex
{
    /// <summary>The index file (alias property IndexPath, so an index binds to -IndexPath).</summary>
    public required string Path { get; init; }

    /// <summary>For a published index (<c>s3://…</c>, then <see cref="Path"/> is its URI), the local
    /// mirror the module read it from; null for a local index file.</summary>
    public string? MirrorPath { get; init; }

    /// <summary>The file name of the index, as tables show it.</summary>
    public string Name => System.IO.Path.GetFileName(Path);

    /// <summary>Size of the disk in bytes.</summary>
    public required long DiskSize { get; init; }

    /// <summary>Number of 64 KiB chunk entries.</summary>
    public required long ChunkCount { get; init; }

    /// <summary>Entries this index sets (a hash here, including explicit zero chunks).</summary>
    public required long ChunksSetHere { get; init; }

    /// <summary>Entries set here to the well-known all-zero chunk (zeroed or trimmed ranges).</summary>
    public required long ZeroChunks { get; init; }

    /// <summary>Entries left <c>ZERO</c> here but provided by a parent index or the base image.</summary>
    public required long ChunksInherited { get; init; }

    /// <summary>Entries no layer provides: they read as zeros.</summary>
    public required long ChunksUnset { get; init; }

    /// <summary>The index this checkpoint was taken from, if any, as an absolute path (a relative
    /// one stored in the file resolved as the module resolves it; see about_ShuruStore).</summary>
    public string? ParentPath { get; init; }

    /// <summary>The file name of the parent index, as tables show it; null without a parent.</summary>
    public string? Parent => ParentPath is null ? null : System.IO.Path.GetFileName(ParentPath);

    /// <summary>The base image the index names (the index file's "fallback"; alias property
    /// FallbackPath), as an absolute path; null when the index names none.</summary>
    public string? BaseImagePath { get; init; }

    /// <summary>The chain of index files, this one first, then parents nearest first, up to a
    /// missing parent.</summary>
    public required string[] Chain { get; init; }

    /// <summary>The parent index the chain names but that does not exist, where the chain stops
    /// (shuru's checkpoint delete leaves such children); null when the chain is whole.</summary>
    public string? MissingParentPath { get; init; }

    /// <summary>The index of the chain that names <see cref="MissingParentPath"/>.</summary>
    public string? MissingParentNamedBy { get; init; }

    /// <summary>True when every parent the chain names exists.</summary>
    public bool IsChainComplete => MissingParentPath is null;

    /// <summary>How many index files the chain has (this one included).</summary>
    public int Depth => Chain.Length;

    /// <summary>Size of the index file in bytes.</summary>
    public long FileSize { get; init; }

    /// <summary>When the index file was last written.</summary>
    public DateTime LastWriteTime { get; init; }

    /// <inheritdoc />
    public override string ToString() => Path;
}
