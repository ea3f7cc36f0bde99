using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Remote;

/// <summary>
/// Where every chunk of a published chain is: the chain's chunk maps joined. Each located chunk
/// has an ordinal, its position in the maps' order (pack order, which is disk order within one
/// upload), and the ordinals are cut into fetch groups: runs of consecutive chunks of one pack,
/// contiguous in it, of at most a given number of chunks. A group is one ranged GET. Immutable.
/// </summary>
public sealed class ChunkLocations
{
    private readonly Dictionary<ChunkHash, int> _ordinals;
    private readonly ChunkHash[] _hashes;
    private readonly int[] _pack, _offset, _length, _group;
    private readonly int[] _groupFirst; // first ordinal of each group, plus Count at the end
    private readonly PackId[] _packs;
    private readonly string[] _packKeys;

    /// <param name="maps">The maps of a chain, in any order; a chunk located twice keeps its first place.</param>
    /// <param name="groupChunks">Most chunks in one fetch group.</param>
    public ChunkLocations(IEnumerable<ChunkMap> maps, int groupChunks = 16)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(groupChunks, 1);
        GroupChunks = groupChunks;
        var packNumbers = new Dictionary<PackId, int>();
        var packs = new List<PackId>();
        var hashes = new List<ChunkHash>();
        var pack = new List<int>();
        var offset = new List<int>();
        var length = new List<int>();
        var mapOf = new List<int>();
        _ordinals = [];
        int mapNumber = 0;
        foreach (var map in maps)
        {
            var local = new int[map.Packs.Count];
            for (int i = 0; i < local.Length; i++)
            {
                if (!packNumbers.TryGetValue(map.Packs[i], out int n)) { n = packs.Count; packNumbers[map.Packs[i]] = n; packs.Add(map.Packs[i]); }
                local[i] = n;
            }
            foreach (var e in map.Entries)
            {
                if (e.Hash.IsZeroChunk || !_ordinals.TryAdd(e.Hash, hashes.Count)) continue;
                hashes.Add(e.Hash);
                pack.Add(local[e.Pack]);
                offset.Add(e.Offset);
                length.Add(e.Length);
                mapOf.Add(mapNumber);
            }
            mapNumber++;
        }
        _hashes = [.. hashes];
        _pack = [.. pack];
        _offset = [.. offset];
        _length = [.. length];
        _packs = [.. packs];
        _packKeys = _packs.Select(RemoteLayout.PackKey).ToArray();
        _group = new int[_hashes.Length];
        var firsts = new List<int>();
        for (int o = 0; o < _hashes.Length; o++)
        {
            bool continues = o > 0 && mapOf[o] == mapOf[o - 1] && _pack[o] == _pack[o - 1]
                && _offset[o] == _offset[o - 1] + _length[o - 1] && o - firsts[^1] < groupChunks;
            if (!continues) firsts.Add(o);
            _group[o] = firsts.Count - 1;
        }
        firsts.Add(_hashes.Length);
        _groupFirst = [.. firsts];
    }

    /// <summary>No chunk located anywhere.</summary>
    public static ChunkLocations Empty { get; } = new([]);

    /// <summary>Most chunks in one fetch group.</summary>
    public int GroupChunks { get; }

    /// <summary>Chunks located.</summary>
    public int Count => _hashes.Length;

    /// <summary>Fetch groups.</summary>
    public int GroupCount => _groupFirst.Length - 1;

    /// <summary>The packs the chunks are in.</summary>
    public IReadOnlyList<PackId> Packs => _packs;

    /// <summary>The ordinal of a located chunk.</summary>
    public bool TryGetOrdinal(ChunkHash hash, out int ordinal) => _ordinals.TryGetValue(hash, out ordinal);

    /// <summary>Whether a chunk is located.</summary>
    public bool Contains(ChunkHash hash) => _ordinals.ContainsKey(hash);

    /// <summary>The chunk at an ordinal.</summary>
    public ChunkHash HashAt(int ordinal) => _hashes[ordinal];
    /// <summary>The key of the pack holding the chunk at an ordinal.</summary>
    public string PackKeyAt(int ordinal) => _packKeys[_pack[ordinal]];
    /// <summary>The pack holding the chunk at an ordinal.</summary>
    public PackId PackAt(int ordinal) => _packs[_pack[ordinal]];
    /// <summary>Where the chunk at an ordinal starts in its pack.</summary>
    public int OffsetAt(int ordinal) => _offset[ordinal];
    /// <summary>The stored length of the chunk at an ordinal.</summary>
    public int LengthAt(int ordinal) => _length[ordinal];

    /// <summary>The fetch group of an ordinal.</summary>
    public int GroupOf(int ordinal) => _group[ordinal];
    /// <summary>The first ordinal of a group.</summary>
    public int GroupFirst(int group) => _groupFirst[group];
    /// <summary>One past the last ordinal of a group.</summary>
    public int GroupEnd(int group) => _groupFirst[group + 1];

    /// <summary>Every location, in ordinal order.</summary>
    public IEnumerable<(ChunkHash Hash, PackId Pack, int Offset, int Length)> All()
    {
        for (int o = 0; o < _hashes.Length; o++) yield return (_hashes[o], _packs[_pack[o]], _offset[o], _length[o]);
    }
}
