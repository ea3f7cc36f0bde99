using ShuruStore.Core.Storage;

namespace ShuruStore.Commands;

/// <summary>Builds the cmdlets' index objects from the engine's index views.</summary>
internal static class ShuruChunkIndexFactory
{
    public static ShuruChunkIndex FromView(IndexChainView view)
    {
        var summary = view.Summarize();
        var file = new FileInfo(summary.Path);
        return new ShuruChunkIndex
        {
            Path = summary.Path,
            DiskSize = summary.DiskSize,
            ChunkCount = summary.ChunkCount,
            ChunksSetHere = summary.SetHere,
            ZeroChunks = summary.ZeroHashEntries,
            ChunksInherited = summary.InheritedFromParents + summary.FromBase,
            ChunksUnset = summary.ReadAsZeros,
            ParentPath = summary.ResolvedParentPath,
            BaseImagePath = summary.FallbackPath is null ? null : summary.BaseImagePath,
            Chain = [.. view.Chain.AllPaths],
            MissingParentPath = summary.MissingParent?.MissingPath,
            MissingParentNamedBy = summary.MissingParent?.IndexPath,
            FileSize = file.Exists ? file.Length : 0,
            LastWriteTime = file.Exists ? file.LastWriteTime : default,
        };
    }

    public static ShuruChunkEntry Entry(ChunkLocation location, string indexPath) => new()
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
        Source = location.LayerPath,
        IsZeroChunk = location.ReadsAsZeros,
        IndexPath = indexPath,
    };
}
