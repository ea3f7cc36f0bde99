namespace ShuruStore.Commands;

/// <summary>What Import-ShuruDisk did for one image.</summary>
public sealed class ShuruImportResult
{
    /// <summary>The index written.</summary>
    public required string IndexPath { get; init; }
    /// <summary>The raw image read.</summary>
    public required string ImagePath { get; init; }
    /// <summary>The chunk store written to.</summary>
    public required string CasPath { get; init; }
    /// <summary>The parent index the new index names, if any.</summary>
    public string? ParentPath { get; init; }
    /// <summary>The base image the new index names as its fallback, if any (alias property FallbackPath).</summary>
    public string? BaseImagePath { get; init; }
    /// <summary>Byte of the image that became byte 0 of the disk.</summary>
    public long Offset { get; init; }
    /// <summary>Size of the disk (bytes imported).</summary>
    public long DiskSize { get; init; }
    /// <summary>Entries in the index.</summary>
    public long ChunkCount { get; init; }
    /// <summary>Chunks added to the store.</summary>
    public long ChunksNew { get; init; }
    /// <summary>Non-zero chunks the store already held (deduplicated).</summary>
    public long ChunksPresent { get; init; }
    /// <summary>All-zero pieces: nothing stored.</summary>
    public long ChunksZero { get; init; }
    /// <summary>Pieces equal to the parent chain or fallback image: left to them.</summary>
    public long ChunksInherited { get; init; }
    /// <summary>Bytes written to new chunk files.</summary>
    public long BytesStored { get; init; }
    /// <summary>How long the import took.</summary>
    public TimeSpan Duration { get; init; }
    /// <summary>Import speed in MiB/s of image read.</summary>
    public double MiBPerSecond => Duration.TotalSeconds > 0 ? DiskSize / 1048576.0 / Duration.TotalSeconds : 0;
}
