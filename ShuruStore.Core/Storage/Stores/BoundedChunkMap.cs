using System.Collections.Concurrent;

namespace ShuruStore.Core.Storage;

/// <summary>
/// What a store remembers about chunk names (verified, published), bounded: when it holds more
/// than <see cref="Capacity"/> entries it is cleared, which costs one more check per chunk later,
/// never a wrong answer. Counted here rather than with ConcurrentDictionary.Count, which takes
/// every lock of the dictionary; approximate under races, since it only bounds memory.
/// </summary>
internal sealed class BoundedChunkMap<TValue>(int capacity)
{
    private readonly ConcurrentDictionary<ChunkHash, TValue> _map = new();
    private int _count;

    /// <summary>Entries held at most before the map starts over.</summary>
    public int Capacity { get; } = capacity;

    public bool ContainsKey(ChunkHash hash) => _map.ContainsKey(hash);

    public bool TryGetValue(ChunkHash hash, out TValue value) => _map.TryGetValue(hash, out value!);

    /// <summary>Adds or replaces an entry.</summary>
    public void Set(ChunkHash hash, TValue value)
    {
        if (_map.TryAdd(hash, value)) { if (Interlocked.Increment(ref _count) > Capacity) Clear(); }
        else _map[hash] = value;
    }

    public void Remove(ChunkHash hash)
    {
        if (_map.TryRemove(hash, out _)) Interlocked.Decrement(ref _count);
    }

    public void Clear()
    {
        _map.Clear();
        Volatile.Write(ref _count, 0);
    }
}
