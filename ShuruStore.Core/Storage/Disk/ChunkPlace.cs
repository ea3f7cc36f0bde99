namespace ShuruStore.Core.Storage;

/// <summary>Where a chunk's current bytes are, in read order.</summary>
public enum ChunkPlaceKind
{
    /// <summary>Unsaved writes in a 64 KiB buffer in memory.</summary>
    Dirty,
    /// <summary>Unsaved writes moved to the spill file (some 4 KiB blocks; the rest as saved).</summary>
    Spilled,
    /// <summary>A hash in the live map (the booted index plus everything stored since).</summary>
    Live,
    /// <summary>A hash in one of the booted index's parents.</summary>
    Parent,
    /// <summary>The base image (not ingested yet).</summary>
    Base,
    /// <summary>No layer: zeros.</summary>
    Unset,
}

/// <summary>
/// The answer of <see cref="ChunkTable.Resolve"/>: where a chunk's bytes are now. For
/// <see cref="ChunkPlaceKind.Dirty"/> and <see cref="ChunkPlaceKind.Spilled"/> the answer (and
/// <see cref="Buffer"/>) is only valid while the chunk's stripe lock is held; the other kinds
/// stay true while the chunk has no unsaved writes.
/// </summary>
public readonly record struct ChunkPlace
{
    public ChunkPlaceKind Kind { get; private init; }
    /// <summary>For <see cref="ChunkPlaceKind.Live"/> and <see cref="ChunkPlaceKind.Parent"/>.</summary>
    public ChunkHash Hash { get; private init; }
    /// <summary>For <see cref="ChunkPlaceKind.Dirty"/>: the 64 KiB buffer.</summary>
    internal byte[]? Buffer { get; private init; }
    /// <summary>For <see cref="ChunkPlaceKind.Spilled"/>: which 4 KiB blocks the spill file holds.</summary>
    internal uint SpilledBlocks { get; private init; }
    /// <summary>For a live zero chunk: it was trimmed or zeroed as a hole.</summary>
    public bool Trimmed { get; private init; }

    /// <summary>Unsaved writes: in memory or in the spill file.</summary>
    public bool IsUnsaved => Kind is ChunkPlaceKind.Dirty or ChunkPlaceKind.Spilled;
    /// <summary>A hash names the content (live or parent).</summary>
    public bool HasHash => Kind is ChunkPlaceKind.Live or ChunkPlaceKind.Parent;
    /// <summary>Reads as zeros without reading anything: no layer, or the zero-chunk hash.</summary>
    public bool ReadsAsZeros => Kind == ChunkPlaceKind.Unset || (HasHash && Hash.IsZeroChunk);

    internal static ChunkPlace Dirty(byte[] buffer) => new() { Kind = ChunkPlaceKind.Dirty, Buffer = buffer };
    internal static ChunkPlace Spilled(uint blocks) => new() { Kind = ChunkPlaceKind.Spilled, SpilledBlocks = blocks };
    internal static ChunkPlace Live(ChunkHash hash, bool trimmed) => new() { Kind = ChunkPlaceKind.Live, Hash = hash, Trimmed = trimmed };

    /// <summary>The place of a chunk the layers below the live map provide.</summary>
    internal static ChunkPlace Below(LayerHit hit) => hit.Kind switch
    {
        LayerKind.Index => new() { Kind = ChunkPlaceKind.Parent, Hash = hit.Hash },
        LayerKind.Base => new() { Kind = ChunkPlaceKind.Base },
        _ => new() { Kind = ChunkPlaceKind.Unset },
    };
}
