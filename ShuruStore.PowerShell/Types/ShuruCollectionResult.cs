namespace ShuruStore.Commands;

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
