namespace ShuruStore.Core.Storage;

/// <summary>
/// An index with its parent chain resolved (nearest parent first) and its fallback base image.
/// shuru followed parent paths without cycle detection, so a checkpoint saved over its own
/// parent looped forever; here a cycle is <see cref="ShuruErrorKind.IndexChainCycle"/>, a
/// missing parent <see cref="ShuruErrorKind.ParentIndexMissing"/>, and the depth is bounded.
/// </summary>
public sealed class IndexChain
{
    /// <summary>Deepest parent chain accepted.</summary>
    public const int DefaultMaxDepth = 256;

    private IndexChain(string path, ChunkIndexFile top, IReadOnlyList<(string Path, ChunkIndexFile Index)> parents, string? basePath)
    {
        Path = path; Top = top; Parents = parents; BaseImagePath = basePath;
    }

    /// <summary>Absolute path of the top index.</summary>
    public string Path { get; }
    /// <summary>The top index.</summary>
    public ChunkIndexFile Top { get; }
    /// <summary>Parents, nearest first, with absolute paths.</summary>
    public IReadOnlyList<(string Path, ChunkIndexFile Index)> Parents { get; }
    /// <summary>The base image: the top index's fallback, else the nearest parent's.</summary>
    public string? BaseImagePath { get; }

    /// <summary>Absolute paths of every index in the chain, top first.</summary>
    public IEnumerable<string> AllPaths => Parents.Select(p => p.Path).Prepend(Path);

    /// <summary>The chain of a checkpoint just saved from a running disk, from the indexes the disk
    /// already holds (its parent is the disk's booted index, whose chain was resolved at open), so
    /// describing a checkpoint does not read back the file it just wrote.</summary>
    internal static IndexChain ForCheckpoint(string path, ChunkIndexFile top, IReadOnlyList<(string Path, ChunkIndexFile Index)> parents, string? basePath) =>
        new(path, top, parents, basePath);

    /// <summary>Loads <paramref name="indexPath"/> and every parent.</summary>
    public static IndexChain Load(string indexPath, int maxDepth = DefaultMaxDepth)
    {
        string top = System.IO.Path.GetFullPath(indexPath);
        var index = ChunkIndexFile.Load(top);
        var (parents, basePath) = ResolveParents(top, index, maxDepth);
        return new IndexChain(top, index, parents, basePath);
    }

    /// <summary>Resolves the parents of an already loaded index.</summary>
    public static (IReadOnlyList<(string Path, ChunkIndexFile Index)> Parents, string? BasePath) ResolveParents(
        string indexPath, ChunkIndexFile index, int maxDepth = DefaultMaxDepth)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal) { System.IO.Path.GetFullPath(indexPath) };
        var parents = new List<(string, ChunkIndexFile)>();
        string currentPath = System.IO.Path.GetFullPath(indexPath);
        string? basePath = ResolveAgainst(index.FallbackPath, currentPath);
        var current = index;
        while (current.ParentPath is { } p)
        {
            // Relative parent paths are resolved against the child's directory (shuru stores absolute ones).
            string full = System.IO.Path.GetFullPath(p, System.IO.Path.GetDirectoryName(currentPath)!);
            if (!seen.Add(full))
                throw new ShuruStoreException(ShuruErrorKind.IndexChainCycle,
                    $"index '{currentPath}' names parent '{full}', which is already in its chain (cycle)", currentPath);
            if (parents.Count >= maxDepth)
                throw new ShuruStoreException(ShuruErrorKind.IndexInvalid, $"parent chain of '{indexPath}' is deeper than {maxDepth}", indexPath);
            ChunkIndexFile parent;
            try { parent = ChunkIndexFile.Load(full); }
            catch (ShuruStoreException e) when (e.Kind == ShuruErrorKind.IndexNotFound)
            {
                throw new ShuruStoreException(ShuruErrorKind.ParentIndexMissing,
                    $"index '{currentPath}' names parent '{full}', which does not exist", full, e);
            }
            parents.Add((full, parent));
            basePath ??= ResolveAgainst(parent.FallbackPath, full);
            current = parent;
            currentPath = full;
        }
        return (parents, basePath);
    }

    /// <summary>A path stored in an index, made absolute against the folder of the index that names
    /// it (never the process working directory, which in pwsh is not even the user's location).</summary>
    private static string? ResolveAgainst(string? stored, string namingIndexPath) =>
        string.IsNullOrEmpty(stored) ? null : System.IO.Path.GetFullPath(stored, System.IO.Path.GetDirectoryName(namingIndexPath)!);
}
