using System.Collections.Concurrent;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>
/// A bounded set of open, verified chunk files, by name, so a warm read of a chunk costs one
/// pread and one statx instead of lstat + open + three fstats + pread + close.
/// <para>
/// The hit path takes no lock: a <see cref="ConcurrentDictionary{TKey,TValue}"/> lookup, a
/// reference-count increment on the file (<see cref="OpenChunkFile"/>) and a reference bit.
/// Adding and removing (a miss, which already paid an open and a read) serialise on one lock.
/// Eviction is CLOCK (second chance): the hand sweeps the slots, clearing reference bits, and
/// evicts the first file not used since its last sweep, which approximates LRU at O(1) per
/// insertion without touching shared state on a hit. Like LRU it gets nothing from a cyclic
/// scan larger than the capacity; the default capacity covers a 1 GiB working set.
/// </para>
/// <para>
/// Every open file counts against the process-wide <see cref="OpenFileBudget"/>; when that is
/// spent the cache evicts one of its own files for a newcomer, or (holding none) does not cache
/// it: the read was served anyway, only the next one costs an open again.
/// </para>
/// </summary>
internal sealed class ChunkHandleCache : IDisposable
{
    private readonly ConcurrentDictionary<ChunkHash, OpenChunkFile> _files;
    private OpenChunkFile?[]? _slots;          // allocated on the first add: a store that is only written costs nothing
    private readonly Stack<int> _freeSlots = new(); // slots emptied by Invalidate
    private int _neverUsed;                         // slots [_neverUsed, Capacity) were never filled
    private readonly object _lock = new();
    private int _count, _hand;
    private bool _disposed;

    public ChunkHandleCache(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        Capacity = capacity;
        _files = new ConcurrentDictionary<ChunkHash, OpenChunkFile>();
    }

    /// <summary>Most files this cache holds open (the process-wide budget may allow fewer).</summary>
    public int Capacity { get; }

    /// <summary>Files held open now (a retired file still being read is not counted).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>The cached file of a chunk, with a reference taken for the caller, who must
    /// <see cref="OpenChunkFile.Release"/> it. False on a miss or when it was just evicted.</summary>
    public bool TryAcquire(ChunkHash hash, out OpenChunkFile file)
    {
        if (_files.TryGetValue(hash, out var found) && found.TryAcquire())
        {
            found.MarkUsed();
            file = found;
            return true;
        }
        file = null!;
        return false;
    }

    /// <summary>Takes ownership of <paramref name="fd"/>, a chunk file verified as
    /// <paramref name="identity"/>, evicting another file if needed. False when it is not cached
    /// (already cached by a concurrent reader, capacity 0, no budget, disposed): the caller
    /// still owns the descriptor and closes it.</summary>
    public bool TryAdd(ChunkHash hash, int fd, FileIdentity identity)
    {
        if (Capacity == 0) return false;
        lock (_lock)
        {
            if (_disposed || _files.ContainsKey(hash)) return false;
            _slots ??= new OpenChunkFile?[Capacity];
            int slot;
            if ((_freeSlots.Count > 0 || _neverUsed < Capacity) && OpenFileBudget.TryTake())
                slot = _freeSlots.Count > 0 ? _freeSlots.Pop() : _neverUsed++;
            else if (!TryEvict(out slot)) return false; // the victim's budget passes to the newcomer
            var file = new OpenChunkFile(hash, fd, identity, slot);
            _slots[slot] = file;
            _files[hash] = file;
            _count++;
            return true;
        }
    }

    /// <summary>Drops a chunk's cached file (changed, corrupt, missing or replaced): the next read
    /// opens the name again. With <paramref name="only"/>, only if that is still the cached file,
    /// so a stale caller cannot drop a newer, freshly verified one.</summary>
    public void Invalidate(ChunkHash hash, OpenChunkFile? only = null)
    {
        if (!_files.ContainsKey(hash)) return; // the common case for a miss: no lock
        lock (_lock)
        {
            if (!_files.TryGetValue(hash, out var file) || (only is not null && !ReferenceEquals(file, only))) return;
            Remove(file);
            _freeSlots.Push(file.Slot);
            OpenFileBudget.Return();
        }
    }

    /// <summary>Under the lock: frees the slot of the first file not used since the hand last
    /// passed it. Two sweeps at most (the first clears every reference bit).</summary>
    private bool TryEvict(out int slot)
    {
        slot = -1;
        if (_count == 0 || _slots is null) return false;
        for (int step = 0; step < 2 * _slots.Length; step++)
        {
            int i = _hand;
            _hand = i + 1 == _slots.Length ? 0 : i + 1;
            var file = _slots[i];
            if (file is null || file.TakeSecondChance()) continue;
            Remove(file);
            slot = i;
            return true;
        }
        return false;
    }

    private void Remove(OpenChunkFile file)
    {
        _slots![file.Slot] = null;
        _files.TryRemove(KeyValuePair.Create(file.Hash, file));
        _count--;
        file.Retire(); // closed now, or by the last reader still holding it
    }

    /// <summary>Closes every cached file (each one as soon as no read holds it). Later adds are
    /// refused, so a read after disposal works uncached instead of failing.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var file in _slots ?? [])
                if (file is not null) { Remove(file); OpenFileBudget.Return(); }
        }
        GC.SuppressFinalize(this);
    }

    /// <summary>A store dropped without Dispose must not keep its descriptors and budget until
    /// the process exits. Unreachable means no read can hold a file, so closing is safe.</summary>
    ~ChunkHandleCache() => Dispose();
}
