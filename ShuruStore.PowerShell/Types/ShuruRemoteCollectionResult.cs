namespace ShuruStore.Commands;

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
