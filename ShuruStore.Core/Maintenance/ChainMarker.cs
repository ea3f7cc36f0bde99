using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Maintenance;

/// <summary>
/// The mark step of a collection for index chains: every hash an index and its parents name,
/// with one rule for stored relative paths, remembering the chains that stop at a missing parent
/// and the path warnings so the collection can report them. Thread-safe: the sweep asks the
/// registrations again while the plan's lists are read.
/// </summary>
internal sealed class ChainMarker(IndexPathResolver paths)
{
    private readonly object _lock = new();
    private readonly List<MissingParentLink> _missing = [];
    private readonly List<string> _warnings = [];

    /// <summary>Chains marked so far that stop at a missing parent, each link once.</summary>
    public IReadOnlyList<MissingParentLink> MissingParents { get { lock (_lock) return [.. _missing]; } }

    /// <summary>Path warnings of the chains marked so far, each once.</summary>
    public IReadOnlyList<string> Warnings { get { lock (_lock) return [.. _warnings]; } }

    /// <summary>Loads <paramref name="indexPath"/>'s chain and adds every hash it names to <paramref name="marked"/>.</summary>
    public void Mark(HashSet<ChunkHash> marked, string indexPath)
    {
        var chain = IndexChain.Load(indexPath, paths);
        foreach (var e in chain.Top.Entries) if (e is { } h) marked.Add(h);
        foreach (var (_, p) in chain.Parents)
            foreach (var e in p.Entries) if (e is { } h) marked.Add(h);
        lock (_lock)
        {
            if (chain.MissingParent is { } m && !_missing.Contains(m)) _missing.Add(m);
            foreach (string w in chain.Warnings) if (!_warnings.Contains(w)) _warnings.Add(w);
        }
    }
}
