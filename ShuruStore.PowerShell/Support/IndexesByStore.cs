namespace ShuruStore.Commands;

/// <summary>
/// The index files a store-maintenance cmdlet received for each chunk store, in the order the
/// stores came. The work runs once per store, after the pipeline ends, so that every chunk is
/// hashed (or every collection planned) once however many indexes named it: stores come down
/// the pipeline from Get-ShuruChunkStore, indexes from Get-ChildItem or Get-ShuruChunkIndex.
/// </summary>
internal sealed class IndexesByStore
{
    private readonly List<string> _stores = [];
    private readonly Dictionary<string, List<string>> _indexes = new(StringComparer.Ordinal);

    public void Add(string casPath, IEnumerable<string> indexPaths)
    {
        if (!_indexes.TryGetValue(casPath, out var list))
        {
            _indexes[casPath] = list = [];
            _stores.Add(casPath);
        }
        foreach (string index in indexPaths)
            if (!list.Contains(index, StringComparer.Ordinal)) list.Add(index);
    }

    /// <summary>Each store once, with the distinct indexes given for it.</summary>
    public IEnumerable<(string CasPath, IReadOnlyList<string> IndexPaths)> Stores =>
        _stores.Select(s => (s, (IReadOnlyList<string>)_indexes[s]));
}
