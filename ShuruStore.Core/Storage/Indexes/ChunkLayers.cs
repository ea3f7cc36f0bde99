namespace ShuruStore.Core.Storage;

/// <summary>Which layer below a disk's own entries holds a chunk.</summary>
public enum LayerKind
{
    /// <summary>One of the indexes (<see cref="LayerHit.Layer"/> says which) names a hash.</summary>
    Index,
    /// <summary>No index names it and the base image covers it.</summary>
    Base,
    /// <summary>Nothing covers it: it reads as zeros.</summary>
    None,
}

/// <summary>The answer of <see cref="ChunkLayers.Resolve"/>.</summary>
/// <param name="Kind">Where the chunk's bytes are.</param>
/// <param name="Layer">For <see cref="LayerKind.Index"/>: the position of the index in the stack, nearest first.</param>
/// <param name="Hash">For <see cref="LayerKind.Index"/>: the hash it names (perhaps the zero chunk).</param>
public readonly record struct LayerHit(LayerKind Kind, int Layer = -1, ChunkHash Hash = default);

/// <summary>
/// The read order below a chunk map, written once: indexes nearest first (a <c>ZERO</c> entry
/// means "look further down"), then the base image where it covers the chunk, then zeros. The
/// live disk, the index inspection, the comparison, the import and the export all resolve
/// through this, so adding a layer kind means changing one place. Immutable.
/// </summary>
public sealed class ChunkLayers
{
    private readonly ChunkIndexFile[] _indexes;

    /// <param name="indexes">Indexes, nearest first.</param>
    /// <param name="baseLength">Bytes of the base image (0: none).</param>
    public ChunkLayers(IEnumerable<ChunkIndexFile> indexes, long baseLength)
    {
        _indexes = indexes.ToArray();
        BaseLength = baseLength;
    }

    /// <summary>No index and no base: everything reads as zeros.</summary>
    public static ChunkLayers Empty { get; } = new([], 0);

    /// <summary>Bytes of the base image (0: none).</summary>
    public long BaseLength { get; }

    /// <summary>The indexes, nearest first.</summary>
    public IReadOnlyList<ChunkIndexFile> Indexes => _indexes;

    /// <summary>Where <paramref name="chunk"/> comes from.</summary>
    public LayerHit Resolve(long chunk)
    {
        for (int i = 0; i < _indexes.Length; i++)
            if (_indexes[i].EntryAt(chunk) is { } h) return new LayerHit(LayerKind.Index, i, h);
        return chunk * ChunkHasher.ChunkSize < BaseLength ? new LayerHit(LayerKind.Base) : new LayerHit(LayerKind.None);
    }

    /// <summary>Whether anything would show through at <paramref name="chunk"/> (then a chunk
    /// zeroed above must be recorded as the zero-chunk hash, not left <c>ZERO</c>).</summary>
    public bool ShowsThrough(long chunk) => Resolve(chunk).Kind != LayerKind.None;

    /// <summary>Every hash the indexes name (for garbage collection).</summary>
    public void AddHashesTo(ISet<ChunkHash> set)
    {
        foreach (var index in _indexes)
            foreach (var e in index.Entries) if (e is { } h) set.Add(h);
    }
}
