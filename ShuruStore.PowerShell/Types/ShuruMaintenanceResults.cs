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

/// <summary>What is wrong with a chunk store file, as Test-ShuruChunkStore reports it.</summary>
public enum ShuruStoreProblemKind
{
    /// <summary>An index names a chunk the store does not hold.</summary>
    Missing,
    /// <summary>A chunk file does not hash to its name (or is longer than 64 KiB).</summary>
    Corrupt,
    /// <summary>A leftover temporary file of an interrupted chunk write.</summary>
    TempFile,
    /// <summary>A chunk an interrupted Remove-ShuruUnusedChunk set aside.</summary>
    QuarantinedChunk,
    /// <summary>A file that is not a chunk (left alone).</summary>
    UnknownFile,
    /// <summary>A registration whose process ended: its state file keeps its chunks while it
    /// exists; -Repair removes the registration once it keeps nothing.</summary>
    EndedRegistration,
    /// <summary>An index given (or one of its parents) names a parent index that does not exist:
    /// its chain stops there, and chunks set only in that parent are lost to it. Path is the
    /// missing index, ReferencedBy the index naming it. Nothing to repair in the store.</summary>
    ParentIndexMissing,
}

/// <summary>One problem Test-ShuruChunkStore found.</summary>
public sealed class ShuruStoreProblem
{
    /// <summary>What is wrong.</summary>
    public required ShuruStoreProblemKind Kind { get; init; }
    /// <summary>The chunk concerned, when there is one.</summary>
    public string? Hash { get; init; }
    /// <summary>The file concerned (for a missing chunk, where it should be).</summary>
    public required string Path { get; init; }
    /// <summary>Size of the file (0 when missing).</summary>
    public long Length { get; init; }
    /// <summary>An index naming the chunk, when indexes were given (for a missing parent index:
    /// the index naming it).</summary>
    public string? ReferencedBy { get; init; }
    /// <summary>What was found.</summary>
    public required string Detail { get; init; }
    /// <summary>Whether -Repair removed (or, for a set-aside chunk, restored) the file.</summary>
    public bool Repaired { get; init; }
}

/// <summary>Totals of Test-ShuruChunkStore -Summary.</summary>
public sealed class ShuruStoreTestResult
{
    /// <summary>The chunk store.</summary>
    public required string CasPath { get; init; }
    /// <summary>No missing and no corrupt chunk, and no given index whose chain names a parent
    /// index that does not exist.</summary>
    public bool IsHealthy { get; init; }
    /// <summary>Chunks verified.</summary>
    public long ChunksChecked { get; init; }
    /// <summary>Bytes re-hashed.</summary>
    public long BytesChecked { get; init; }
    /// <summary>Chunks named by the indexes but absent.</summary>
    public long Missing { get; init; }
    /// <summary>Chunks whose content does not match their name.</summary>
    public long Corrupt { get; init; }
    /// <summary>Leftover temporary files.</summary>
    public long TempFiles { get; init; }
    /// <summary>Chunks set aside by an interrupted collection.</summary>
    public long QuarantinedChunks { get; init; }
    /// <summary>Files that are not chunks.</summary>
    public long UnknownFiles { get; init; }
    /// <summary>Registrations whose process has ended (reported under Problems as EndedRegistration).</summary>
    public long EndedRegistrations { get; init; }
    /// <summary>Parent indexes named by the given chains that do not exist (reported under
    /// Problems as ParentIndexMissing).</summary>
    public long MissingParents { get; init; }
    /// <summary>Files -Repair removed or restored.</summary>
    public long Repaired { get; init; }
    /// <summary>The problems, as the cmdlet emits them without -Summary.</summary>
    public ShuruStoreProblem[] Problems { get; init; } = [];
    /// <summary>How long the check took.</summary>
    public TimeSpan Duration { get; init; }
}

/// <summary>What Remove-ShuruUnusedChunk found and removed.</summary>
public sealed class ShuruCollectionResult
{
    /// <summary>The chunk store.</summary>
    public required string CasPath { get; init; }
    /// <summary>True under -WhatIf (or when the removal was declined): nothing was removed.</summary>
    public bool WhatIf { get; init; }
    /// <summary>Chunk files in the store.</summary>
    public long ChunksScanned { get; init; }
    /// <summary>Chunk files kept because an index, a state file or a running server references them.</summary>
    public long ChunksReferenced { get; init; }
    /// <summary>Unreferenced chunk files kept because they are younger than the grace period.</summary>
    public long ChunksSpared { get; init; }
    /// <summary>Unreferenced chunk files old enough to go.</summary>
    public long ChunksUnused { get; init; }
    /// <summary>Their bytes.</summary>
    public long BytesUnused { get; init; }
    /// <summary>Chunk files removed.</summary>
    public long ChunksRemoved { get; init; }
    /// <summary>Bytes freed.</summary>
    public long BytesRemoved { get; init; }
    /// <summary>Candidates a running server started to use during the sweep: kept.</summary>
    public long ChunksRescued { get; init; }
    /// <summary>Running servers of this session whose disks were kept.</summary>
    public string[] LiveServers { get; init; } = [];
    /// <summary>Registrations in the store (servers and imports of any process, ended ones with a
    /// resumable state file) whose chunks were kept.</summary>
    public ShuruStoreUser[] Users { get; init; } = [];
    /// <summary>Parent indexes named by the kept chains that do not exist: what the rest of each
    /// such chain names was kept.</summary>
    public string[] MissingParents { get; init; } = [];
    /// <summary>How long the collection took.</summary>
    public TimeSpan Duration { get; init; }
}
