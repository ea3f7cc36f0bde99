using ShuruStore.Core.Storage;

namespace ShuruStore.Commands;

/// <summary>Builds the cmdlets' index objects from the engine's index views.</summary>
internal static class ShuruChunkIndexFactory
{
    public static ShuruChunkIndex FromView(IndexChainView view) => FromView(view, PublishedNames.None);

    /// <summary>As <see cref="FromView(IndexChainView)"/>, showing mirrors of published indexes by their URIs.</summary>
    public static ShuruChunkIndex FromView(IndexChainView view, PublishedNames names)
    {
        var summary = view.Summarize();
        var file = new FileInfo(summary.Path);
        string shown = names.Show(summary.Path)!;
        return new ShuruChunkIndex
        {
            Path = shown,
            MirrorPath = shown == summary.Path ? null : summary.Path,
            DiskSize = summary.DiskSize,
            ChunkCount = summary.ChunkCount,
            ChunksSetHere = summary.SetHere,
            ZeroChunks = summary.ZeroHashEntries,
            ChunksInherited = summary.InheritedFromParents + summary.FromBase,
            ChunksUnset = summary.ReadAsZeros,
            ParentPath = names.Show(summary.ResolvedParentPath),
            BaseImagePath = summary.FallbackPath is null ? null : summary.BaseImagePath,
            Chain = [.. view.Chain.AllPaths.Select(p => names.Show(p)!)],
            MissingParentPath = names.Show(summary.MissingParent?.MissingPath),
            MissingParentNamedBy = names.Show(summary.MissingParent?.IndexPath),
            FileSize = file.Exists ? file.Length : 0,
            LastWriteTime = file.Exists ? file.LastWriteTime : default,
        };
    }

    /// <param name="location">The entry.</param>
    /// <param name="indexPath">The index as shown (its URI for a published one).</param>
    /// <param name="names">How the layers' paths are shown.</param>
    public static ShuruChunkEntry Entry(ChunkLocation location, string indexPath, PublishedNames names) => new()
    {
        Chunk = location.Chunk,
        Offset = location.Offset,
        Length = location.Length,
        Hash = location.Hash?.ToString(),
        Layer = location.Source switch
        {
            ChunkSource.ThisIndex => ShuruChunkLayer.Index,
            ChunkSource.Parent => ShuruChunkLayer.Parent,
            ChunkSource.Base => ShuruChunkLayer.Base,
            _ => ShuruChunkLayer.Zero,
        },
        Source = names.Show(location.LayerPath),
        IsZeroChunk = location.ReadsAsZeros,
        IndexPath = indexPath,
    };
}
