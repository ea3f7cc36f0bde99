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
