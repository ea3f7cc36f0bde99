namespace ShuruStore.Commands;

/// <summary>What Export-ShuruDisk wrote for one index.</summary>
public sealed class ShuruExportResult
{
    /// <summary>The raw image written.</summary>
    public required string Destination { get; init; }
    /// <summary>The index exported.</summary>
    public required string IndexPath { get; init; }
    /// <summary>Size of the image.</summary>
    public long DiskSize { get; init; }
    /// <summary>Chunks in the index.</summary>
    public long ChunkCount { get; init; }
    /// <summary>Chunks read (verified) from the store.</summary>
    public long ChunksFromStore { get; init; }
    /// <summary>Chunks read from the base image.</summary>
    public long ChunksFromBase { get; init; }
    /// <summary>Chunks that read as zeros, left as holes.</summary>
    public long ChunksZero { get; init; }
    /// <summary>Bytes of data written; the rest of the image is holes.</summary>
    public long BytesWritten { get; init; }
    /// <summary>How long the export took.</summary>
    public TimeSpan Duration { get; init; }
    /// <summary>Export speed in MiB/s of disk size.</summary>
    public double MiBPerSecond => Duration.TotalSeconds > 0 ? DiskSize / 1048576.0 / Duration.TotalSeconds : 0;
}
