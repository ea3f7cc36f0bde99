namespace ShuruStore.Core.Storage;

/// <summary>Which layer provides a chunk's content.</summary>
public enum ChunkSource
{
    /// <summary>The index itself holds a hash.</summary>
    ThisIndex,
    /// <summary>A parent index holds a hash.</summary>
    Parent,
    /// <summary>The flat base image.</summary>
    Base,
    /// <summary>No layer covers it: reads as zeros.</summary>
    Zeros,
}

/// <summary>Where one chunk of an index chain comes from.</summary>
/// <param name="Chunk">Chunk number.</param>
/// <param name="Offset">Byte offset in the virtual disk.</param>
/// <param name="Length">Bytes of the disk this chunk covers (short at the end).</param>
/// <param name="Hash">The hash providing the content (null for base and zeros).</param>
/// <param name="Source">The providing layer.</param>
/// <param name="LayerPath">The index or base image path providing it (null for zeros).</param>
public readonly record struct ChunkLocation(long Chunk, long Offset, int Length, ChunkHash? Hash, ChunkSource Source, string? LayerPath)
{
    /// <summary>Whether the content is the 64 KiB zero chunk (or no layer at all).</summary>
    public bool ReadsAsZeros => Source == ChunkSource.Zeros || (Hash is { } h && h.IsZeroChunk);
}

/// <summary>Counts for an index and its chain.</summary>
public sealed record IndexSummary(
    string Path, long DiskSize, long ChunkCount, string? ParentPath, string? FallbackPath, string? BaseImagePath,
    bool BaseImageExists, int ParentCount,
    long SetHere, long ZeroEntries, long InheritedFromParents, long FromBase, long ReadAsZeros, long ZeroHashEntries)
{
    /// <summary>Where the chain stops at a parent that does not exist (the counts are of what is left); null when whole.</summary>
    public MissingParentLink? MissingParent { get; init; }
    /// <summary>The top index's parent as resolved (absolute; perhaps the missing one), or null.</summary>
    public string? ResolvedParentPath { get; init; }
}

/// <summary>
/// Read-only view of an index with its chain resolved, for the inspection cmdlets: which layer
/// provides each chunk, and totals. Never touches the chunk store.
/// </summary>
public sealed class IndexChainView
{
    private const int CS = ChunkHasher.ChunkSize;

    private readonly ChunkLayers _layers;
    private readonly string[] _layerPaths;

    private IndexChainView(IndexChain chain)
    {
        Chain = chain;
        BaseImagePath = chain.BaseImagePath;
        if (BaseImagePath is not null)
        {
            var fi = new FileInfo(BaseImagePath);
            BaseImageExists = fi.Exists;
            BaseImageLength = fi.Exists ? fi.Length : 0;
        }
        _layers = new ChunkLayers(chain.Parents.Select(p => p.Index).Prepend(chain.Top), BaseImageLength);
        _layerPaths = chain.AllPaths.ToArray();
    }

    /// <summary>A view of an already resolved chain (e.g. <see cref="CheckpointInfo.Chain"/>).</summary>
    public static IndexChainView FromChain(IndexChain chain) => new(chain ?? throw new ArgumentNullException(nameof(chain)));

    /// <summary>Loads an index and its parents (a cycle is an error; a missing parent ends the
    /// chain and is reported in <see cref="IndexChain.MissingParent"/>).</summary>
    public static IndexChainView Open(string indexPath, IndexPathResolver? paths = null) => new(IndexChain.Load(indexPath, paths));

    /// <summary>The resolved chain.</summary>
    public IndexChain Chain { get; }
    /// <summary>The base image at the bottom, or null.</summary>
    public string? BaseImagePath { get; }
    /// <summary>Whether the base image exists now.</summary>
    public bool BaseImageExists { get; }
    /// <summary>Size of the base image (0 if missing).</summary>
    public long BaseImageLength { get; }
    /// <summary>Size of the disk the index describes.</summary>
    public long DiskSize => Chain.Top.DiskSize;
    /// <summary>Number of chunks.</summary>
    public long ChunkCount => Chain.Top.ChunkCount;

    /// <summary>Which layer provides <paramref name="chunk"/>.</summary>
    public ChunkLocation Locate(long chunk)
    {
        if (chunk < 0 || chunk >= ChunkCount) throw new ArgumentOutOfRangeException(nameof(chunk));
        long offset = chunk * CS;
        int len = (int)Math.Min(CS, DiskSize - offset);
        var hit = _layers.Resolve(chunk);
        return hit.Kind switch
        {
            LayerKind.Index => new(chunk, offset, len, hit.Hash, hit.Layer == 0 ? ChunkSource.ThisIndex : ChunkSource.Parent, _layerPaths[hit.Layer]),
            LayerKind.Base => new(chunk, offset, len, null, ChunkSource.Base, BaseImagePath),
            _ => new(chunk, offset, len, null, ChunkSource.Zeros, null),
        };
    }

    /// <summary>Locations of <paramref name="count"/> chunks from <paramref name="first"/> (all by default).</summary>
    public IEnumerable<ChunkLocation> Chunks(long first = 0, long count = long.MaxValue)
    {
        if (first < 0) throw new ArgumentOutOfRangeException(nameof(first));
        long end = count >= ChunkCount - first ? ChunkCount : first + count;
        for (long c = first; c < end; c++) yield return Locate(c);
    }

    /// <summary>Totals: entries set here, ZERO entries and where those come from.</summary>
    public IndexSummary Summarize()
    {
        long here = 0, zero = 0, parents = 0, fromBase = 0, zeros = 0, zeroHash = 0;
        foreach (var loc in Chunks())
        {
            if (loc.Hash is { } h && h.IsZeroChunk) zeroHash++;
            switch (loc.Source)
            {
                case ChunkSource.ThisIndex: here++; break;
                case ChunkSource.Parent: zero++; parents++; break;
                case ChunkSource.Base: zero++; fromBase++; break;
                default: zero++; zeros++; break;
            }
        }
        var top = Chain.Top;
        string? resolvedParent = Chain.Parents.Count > 0 ? Chain.Parents[0].Path
            : Chain.MissingParent is { } m && m.IndexPath == Chain.Path ? m.MissingPath : null;
        return new IndexSummary(Chain.Path, top.DiskSize, top.ChunkCount, top.ParentPath, top.FallbackPath, BaseImagePath,
            BaseImageExists, Chain.Parents.Count, here, zero, parents, fromBase, zeros, zeroHash)
        {
            MissingParent = Chain.MissingParent,
            ResolvedParentPath = resolvedParent,
        };
    }
}

/// <summary>Entry points for inspecting an index.</summary>
public static class IndexInspector
{
    /// <summary>Totals for an index and its chain.</summary>
    public static IndexSummary Inspect(string indexPath, IndexPathResolver? paths = null) => IndexChainView.Open(indexPath, paths).Summarize();

    /// <summary>Where each chunk of a range comes from.</summary>
    public static IReadOnlyList<ChunkLocation> Locate(string indexPath, long firstChunk, long count, IndexPathResolver? paths = null) =>
        IndexChainView.Open(indexPath, paths).Chunks(firstChunk, count).ToList();
}
