namespace ShuruStore.Commands;

/// <summary>What Publish-ShuruCheckpoint did (or, with -WhatIf, would do) for one checkpoint.</summary>
public sealed class ShuruPublishResult
{
    /// <summary>The published index, s3://BUCKET/PREFIX/indexes/NAME.idx: what another host boots.</summary>
    public required string Uri { get; init; }
    /// <summary>The local checkpoint published.</summary>
    public required string IndexPath { get; init; }
    /// <summary>The remote store, s3://BUCKET/PREFIX.</summary>
    public required string Destination { get; init; }
    /// <summary>True for -WhatIf: the counts are what would be uploaded.</summary>
    public bool WhatIf { get; init; }
    /// <summary>The checkpoint was published before: nothing was uploaded.</summary>
    public bool AlreadyPublished { get; init; }
    /// <summary>Indexes uploaded (the checkpoint, new parents, the base pieces' index).</summary>
    public int IndexesPublished { get; init; }
    /// <summary>Packs uploaded.</summary>
    public int PacksUploaded { get; init; }
    /// <summary>Chunks in them.</summary>
    public long ChunksUploaded { get; init; }
    /// <summary>Bytes uploaded (packs, maps, indexes).</summary>
    public long BytesUploaded { get; init; }
    /// <summary>Packs the chain needs that were already in the destination (an interrupted run's).</summary>
    public int PacksSkipped { get; init; }
    /// <summary>Their bytes.</summary>
    public long BytesSkipped { get; init; }
    /// <summary>The indexes this run published (or found published), bottom first; the part of the
    /// chain the destination already had below them is not listed.</summary>
    public string[] Chain { get; init; } = [];
    /// <summary>How long it took.</summary>
    public TimeSpan Duration { get; init; }
    /// <summary>Upload speed in MiB/s.</summary>
    public double MiBPerSecond => Duration.TotalSeconds > 0 ? BytesUploaded / 1048576.0 / Duration.TotalSeconds : 0;
}

/// <summary>One problem Test-ShuruChunkStore found in a remote store.</summary>
public sealed class ShuruRemoteProblem
{
    /// <summary>What is wrong (IndexInvalid, ParentMissing, MapMissing, MapInvalid, ChunkNotLocated,
    /// PackMissing, PackInvalid, ChunkDamaged; UnreferencedPack and StaleUpload are notes, not faults).</summary>
    public required string Kind { get; init; }
    /// <summary>The object at fault, s3://….</summary>
    public required string Uri { get; init; }
    /// <summary>The chunk concerned, if any.</summary>
    public string? Hash { get; init; }
    /// <summary>What was found.</summary>
    public required string Detail { get; init; }
    /// <summary>Whether it makes a published checkpoint unreadable.</summary>
    public bool IsFault { get; init; }
}

/// <summary>What Test-ShuruChunkStore found in a remote store (-CasPath s3://…).</summary>
public sealed class ShuruRemoteStoreTestResult
{
    /// <summary>The remote store.</summary>
    public required string CasPath { get; init; }
    /// <summary>No fault: every published checkpoint is complete and every chunk read was intact.</summary>
    public bool IsHealthy { get; init; }
    /// <summary>Published indexes checked.</summary>
    public int IndexesChecked { get; init; }
    /// <summary>Packs checked.</summary>
    public long PacksChecked { get; init; }
    /// <summary>Chunks read and hashed.</summary>
    public long ChunksChecked { get; init; }
    /// <summary>Their bytes.</summary>
    public long BytesChecked { get; init; }
    /// <summary>Problems that make a checkpoint unreadable.</summary>
    public int Faults { get; init; }
    /// <summary>Notes (unreferenced packs, abandoned uploads).</summary>
    public int Notes { get; init; }
    /// <summary>Every problem and note.</summary>
    public ShuruRemoteProblem[] Problems { get; init; } = [];
    /// <summary>How long it took.</summary>
    public TimeSpan Duration { get; init; }
}

/// <summary>What Remove-ShuruUnusedChunk did in a remote store (-CasPath s3://…).</summary>
public sealed class ShuruRemoteCollectionResult
{
    /// <summary>The remote store.</summary>
    public required string CasPath { get; init; }
    /// <summary>True for -WhatIf (or a declined confirmation): nothing was removed.</summary>
    public bool WhatIf { get; init; }
    /// <summary>Published indexes (the roots).</summary>
    public int Indexes { get; init; }
    /// <summary>Packs in the store.</summary>
    public long PacksScanned { get; init; }
    /// <summary>Packs a published index needs.</summary>
    public long PacksReferenced { get; init; }
    /// <summary>Unreferenced packs younger than the grace period.</summary>
    public long PacksSpared { get; init; }
    /// <summary>Unreferenced packs an upload in progress will use.</summary>
    public long PacksProtectedByUploads { get; init; }
    /// <summary>Objects a collection removes (packs, orphan maps, abandoned markers).</summary>
    public long ObjectsUnused { get; init; }
    /// <summary>Their bytes.</summary>
    public long BytesUnused { get; init; }
    /// <summary>Objects removed.</summary>
    public long ObjectsRemoved { get; init; }
    /// <summary>Bytes removed.</summary>
    public long BytesRemoved { get; init; }
    /// <summary>Objects kept at the last moment because an upload or a new index came to need them.</summary>
    public long ObjectsRescued { get; init; }
    /// <summary>How long it took.</summary>
    public TimeSpan Duration { get; init; }
}
