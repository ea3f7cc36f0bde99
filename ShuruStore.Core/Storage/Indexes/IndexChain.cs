namespace ShuruStore.Core.Storage;

/// <summary>
/// An index with its parent chain resolved (nearest parent first) and its fallback base image.
/// shuru followed parent paths without cycle detection, so a checkpoint saved over its own
/// parent looped forever; here a cycle is <see cref="ShuruErrorKind.IndexChainCycle"/> and the
/// depth is bounded. A parent that does not exist ends the chain there, as in shuru, but is never
/// silent: the link is kept in <see cref="MissingParent"/> and every caller decides (inspection,
/// comparison, verification and collection report it and work on what is left; serving and
/// exporting refuse unless told to accept it, through <see cref="RequireComplete"/>).
/// Stored paths are resolved by an <see cref="IndexPathResolver"/>.
/// </summary>
public sealed class IndexChain
{
    /// <summary>Deepest parent chain accepted.</summary>
    public const int DefaultMaxDepth = 256;

    private IndexChain(string path, ChunkIndexFile top, IReadOnlyList<(string Path, ChunkIndexFile Index)> parents, string? basePath,
        MissingParentLink? missing, IReadOnlyList<string> warnings)
    {
        Path = path; Top = top; Parents = parents; BaseImagePath = basePath; MissingParent = missing; Warnings = warnings;
    }

    /// <summary>Absolute path of the top index.</summary>
    public string Path { get; }
    /// <summary>The top index.</summary>
    public ChunkIndexFile Top { get; }
    /// <summary>Parents, nearest first, with absolute paths (up to a missing one).</summary>
    public IReadOnlyList<(string Path, ChunkIndexFile Index)> Parents { get; }
    /// <summary>The base image: the top index's fallback, else the nearest parent's (absolute).</summary>
    public string? BaseImagePath { get; }
    /// <summary>The parent link that leads to no file, where the chain stops; null when the chain is whole.</summary>
    public MissingParentLink? MissingParent { get; }
    /// <summary>Whether every parent the chain names exists.</summary>
    public bool IsComplete => MissingParent is null;
    /// <summary>Stored relative paths whose two readings name different files (see <see cref="IndexPathResolver"/>).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Absolute paths of every index in the chain, top first.</summary>
    public IEnumerable<string> AllPaths => Parents.Select(p => p.Path).Prepend(Path);

    /// <summary>Throws <see cref="ShuruErrorKind.ParentIndexMissing"/> when a parent is missing:
    /// for operations whose result would silently differ from the checkpointed disk.</summary>
    /// <param name="operation">What is refused, e.g. "cannot serve 'a.idx'".</param>
    /// <param name="howToAccept">How a caller accepts the shortened chain, e.g. "allow a missing parent".</param>
    public void RequireComplete(string operation, string howToAccept)
    {
        if (MissingParent is { } m) throw m.ToException(operation, BaseImagePath, howToAccept);
    }

    /// <summary>The chain of a checkpoint just saved from a running disk, from the indexes the disk
    /// already holds (its parent is the disk's booted index, whose chain was resolved at open), so
    /// describing a checkpoint does not read back the file it just wrote.</summary>
    internal static IndexChain ForCheckpoint(string path, ChunkIndexFile top, IReadOnlyList<(string Path, ChunkIndexFile Index)> parents, string? basePath,
        MissingParentLink? missing) =>
        new(path, top, parents, basePath, missing, []);

    /// <summary>Loads <paramref name="indexPath"/> and every parent; relative stored paths are
    /// resolved by <paramref name="paths"/> (default: against the process current directory first).</summary>
    public static IndexChain Load(string indexPath, IndexPathResolver? paths = null, int maxDepth = DefaultMaxDepth)
    {
        paths ??= IndexPathResolver.ForCurrentDirectory();
        string topPath = System.IO.Path.GetFullPath(indexPath);
        var top = ChunkIndexFile.Load(topPath);
        var warnings = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal) { topPath };
        var parents = new List<(string, ChunkIndexFile)>();
        string currentPath = topPath;
        string? basePath = ResolveFallback(top, currentPath);
        MissingParentLink? missing = null;
        var current = top;
        while (current.ParentPath is { } stored)
        {
            var resolved = paths.Resolve(stored, currentPath, "parent");
            if (resolved.Warning is { } w) warnings.Add(w);
            string full = resolved.Path;
            if (!seen.Add(full))
                throw new ShuruStoreException(ShuruErrorKind.IndexChainCycle,
                    $"index '{currentPath}' names parent '{full}', which is already in its chain (cycle)", currentPath);
            if (parents.Count >= maxDepth)
                throw new ShuruStoreException(ShuruErrorKind.IndexInvalid, $"parent chain of '{topPath}' is deeper than {maxDepth}", topPath);
            ChunkIndexFile parent;
            try { parent = ChunkIndexFile.Load(full); }
            catch (ShuruStoreException e) when (e.Kind == ShuruErrorKind.IndexNotFound)
            {
                missing = new MissingParentLink(currentPath, stored, full, resolved.OtherCandidate);
                break;
            }
            parents.Add((full, parent));
            basePath ??= ResolveFallback(parent, full);
            current = parent;
            currentPath = full;
        }
        return new IndexChain(topPath, top, parents, basePath, missing, warnings);

        string? ResolveFallback(ChunkIndexFile index, string namingPath)
        {
            if (index.FallbackPath is not { } f) return null;
            var r = paths.Resolve(f, namingPath, "fallback image");
            if (r.Warning is { } w) warnings.Add(w);
            return r.Path;
        }
    }
}
