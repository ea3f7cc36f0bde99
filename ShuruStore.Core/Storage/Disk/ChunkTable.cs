using System.Collections.Concurrent;

namespace ShuruStore.Core.Storage;

/// <summary>
/// The per-chunk state of a <see cref="CowDisk"/> and the one place that decides where a chunk's
/// bytes are (<see cref="Resolve"/>): unsaved writes in memory, unsaved writes in the spill file,
/// the live map (the booted index plus everything stored since), the booted index's parents
/// nearest first, the base image, zeros.
/// <para>Locking: one striped lock per chunk (<see cref="Stripe"/>) guards that chunk's dirty
/// buffer, spilled blocks, live entry and hole mark, so two writes to one chunk never lose an
/// update and lazy ingestion never overwrites a newer write. Every member that reads or changes
/// one chunk's state says so and must be called with that chunk's stripe held. A checkpoint takes
/// every stripe (<see cref="HoldAll"/>) for a consistent cut; a batch being stored takes its
/// chunks' stripes in ascending order (<see cref="HoldStripesOf"/>), as the checkpoint does.</para>
/// </summary>
internal sealed class ChunkTable
{
    private const int CS = ChunkHasher.ChunkSize;
    private const int StripeCount = 1024;

    /// <summary>Every 4 KiB block of a chunk.</summary>
    public const uint AllBlocks = uint.MaxValue >> (32 - CS / 4096);

    private readonly object[] _stripes = Enumerable.Range(0, StripeCount).Select(_ => new object()).ToArray();
    private readonly ChunkHash?[] _live;        // null = ZERO
    private readonly ChunkIndexFile? _boot;     // the booted index (immutable)
    private readonly ChunkLayers _below;        // the booted index's parents, then the base
    private readonly ConcurrentDictionary<long, byte[]> _dirty = new();
    private readonly ConcurrentDictionary<long, uint> _dirtyBlocks = new();  // blocks written since the buffer was filled
    private readonly ConcurrentDictionary<long, uint> _spilled = new();      // blocks the spill file holds
    private readonly ConcurrentDictionary<long, byte> _changed = new();      // live entries not yet journaled
    private readonly ConcurrentDictionary<long, byte> _holes = new();        // zero-chunk entries made by trim or plain zeroing
    private readonly ConcurrentDictionary<long, byte> _claims = new();       // unsaved chunks a worker is storing or spilling
    private long _dirtyBytes;

    /// <param name="size">Disk size in bytes.</param>
    /// <param name="live">The live map to start from (the booted index plus any journaled changes); owned from now on.</param>
    /// <param name="boot">The booted index, or null in lazy mode.</param>
    /// <param name="below">The booted index's parents nearest first, and the base.</param>
    public ChunkTable(long size, ChunkHash?[] live, ChunkIndexFile? boot, ChunkLayers below)
    {
        Size = size; _live = live; _boot = boot; _below = below;
    }

    public long Size { get; }
    public long ChunkCount => _live.LongLength;
    /// <summary>The layers below the live map.</summary>
    public ChunkLayers Below => _below;
    /// <summary>Bytes of unsaved chunks held in memory.</summary>
    public long DirtyBytes => Interlocked.Read(ref _dirtyBytes);
    public int DirtyCount => _dirty.Count;
    public int SpilledCount => _spilled.Count;

    /// <summary>Bytes of the disk chunk <paramref name="chunk"/> covers (short at the end).</summary>
    public int ChunkLength(long chunk) => (int)Math.Min(CS, Size - chunk * CS);

    /// <summary>The lock that guards one chunk's state.</summary>
    public object Stripe(long chunk) => _stripes[(int)(chunk % StripeCount)];

    // ---- where a chunk's bytes are ----

    /// <summary>Where the chunk's current bytes are. Stripe held.</summary>
    public ChunkPlace Resolve(long chunk)
    {
        if (_dirty.TryGetValue(chunk, out var buffer)) return ChunkPlace.Dirty(buffer);
        if (_spilled.TryGetValue(chunk, out uint blocks)) return ChunkPlace.Spilled(blocks);
        return ResolveSaved(chunk);
    }

    /// <summary>Where the chunk's saved bytes are, ignoring unsaved writes: what lies below them,
    /// which cannot change while the chunk has unsaved writes. Stripe held.</summary>
    public ChunkPlace ResolveSaved(long chunk) =>
        _live[chunk] is { } h ? ChunkPlace.Live(h, h.IsZeroChunk && _holes.ContainsKey(chunk)) : ChunkPlace.Below(_below.Resolve(chunk));

    /// <summary><see cref="Resolve"/> taking the stripe itself, for callers that only need the
    /// kind or a hash (never <see cref="ChunkPlace.Buffer"/>, which is only valid under the lock).</summary>
    public ChunkPlace ResolveNow(long chunk)
    {
        lock (Stripe(chunk)) return Resolve(chunk);
    }

    /// <summary>Whether anything below the live map would show through at this chunk if its
    /// entry were ZERO (then a zeroed chunk must be recorded as the zero-chunk hash): the booted
    /// index (the parent of every checkpoint this disk saves), its parents, the base.</summary>
    public bool ShowsThrough(long chunk) => _boot?.EntryAt(chunk) is not null || _below.ShowsThrough(chunk);

    // ---- unsaved chunks (stripe held for each) ----

    /// <summary>A new dirty buffer for the chunk, with the blocks written so far.</summary>
    public void AddDirty(long chunk, byte[] buffer, uint blocks)
    {
        _dirty[chunk] = buffer;
        _dirtyBlocks[chunk] = blocks;
        Interlocked.Add(ref _dirtyBytes, CS);
    }

    /// <summary>More blocks written into the chunk's dirty buffer.</summary>
    public void AddDirtyBlocks(long chunk, uint blocks) =>
        _dirtyBlocks[chunk] = _dirtyBlocks.TryGetValue(chunk, out var written) ? written | blocks : AllBlocks;

    /// <summary>The blocks written since the chunk's buffer was filled.</summary>
    public uint DirtyBlocks(long chunk) => _dirtyBlocks.TryGetValue(chunk, out var b) ? b : AllBlocks;

    /// <summary>Drops the chunk's dirty buffer and returns it (null if it had none).</summary>
    public byte[]? RemoveDirty(long chunk)
    {
        if (!_dirty.TryRemove(chunk, out var buffer)) return null;
        _dirtyBlocks.TryRemove(chunk, out _);
        Interlocked.Add(ref _dirtyBytes, -CS);
        return buffer;
    }

    /// <summary>The chunk's unsaved writes are now (also) in the spill file: these blocks.</summary>
    public void SetSpilled(long chunk, uint blocks) => _spilled[chunk] = blocks;

    /// <summary>Drops the chunk's spilled state; true if it had one.</summary>
    public bool RemoveSpilled(long chunk) => _spilled.TryRemove(chunk, out _);

    /// <summary>Whether the chunk has a dirty buffer (no lock needed: a hint for claiming).</summary>
    public bool IsDirty(long chunk) => _dirty.ContainsKey(chunk);

    /// <summary>Chunk numbers with a dirty buffer now (a moving snapshot).</summary>
    public IEnumerable<long> DirtyChunks => _dirty.Keys;

    /// <summary>Every chunk with unsaved writes, in memory or spilled, in ascending order.</summary>
    public List<long> UnsavedChunks()
    {
        var keys = new List<long>(_dirty.Count + _spilled.Count);
        foreach (var kv in _dirty) keys.Add(kv.Key);
        foreach (var kv in _spilled) keys.Add(kv.Key);
        keys.Sort();
        return keys;
    }

    /// <summary>Chunks of [first, end) with unsaved writes, ascending.</summary>
    public List<long> UnsavedChunks(long first, long end)
    {
        var range = new List<long>();
        for (long c = first; c < Math.Min(end, ChunkCount); c++) if (_dirty.ContainsKey(c) || _spilled.ContainsKey(c)) range.Add(c);
        return range;
    }

    /// <summary>Claims an unsaved chunk for one worker (a store batch, a spill): false when another holds it.</summary>
    public bool TryClaim(long chunk) => _claims.TryAdd(chunk, 0);

    public void Unclaim(long chunk) => _claims.TryRemove(chunk, out _);

    // ---- saved state (stripe held for each) ----

    /// <summary>Records the chunk's live entry (null = ZERO); a change is kept for the journal.</summary>
    public void SetLive(long chunk, ChunkHash? entry)
    {
        if (_live[chunk] == entry) return;
        _live[chunk] = entry;
        _changed[chunk] = 1;
    }

    /// <summary>Whether a zero-chunk entry reports as a hole (trimmed) or as allocated zeros.</summary>
    public void SetHole(long chunk, bool hole)
    {
        if (hole) _holes[chunk] = 1; else _holes.TryRemove(chunk, out _);
    }

    // ---- whole-table views ----

    /// <summary>Holds every stripe, in ascending order, until disposed.</summary>
    public AllStripes HoldAll() => new(_stripes);

    /// <summary>Holds the stripes of <paramref name="chunks"/>, in ascending order, until disposed.</summary>
    public HeldStripes HoldStripesOf(IReadOnlyList<long> chunks)
    {
        var indexes = new SortedSet<int>();
        foreach (var c in chunks) indexes.Add((int)(c % StripeCount));
        var held = new HeldStripes(indexes.Count);
        try { foreach (var i in indexes) held.Enter(_stripes[i]); }
        catch { held.Dispose(); throw; }
        return held;
    }

    /// <summary>A copy of the live map. Every stripe held (<see cref="HoldAll"/>).</summary>
    public ChunkHash?[] SnapshotLive() => (ChunkHash?[])_live.Clone();

    /// <summary>Live entries changed since the last call, with their current values: the journal's
    /// next records. <see cref="ReturnChanges"/> puts them back when they could not be written.</summary>
    public List<(long Chunk, ChunkHash? Entry)> TakeChanges()
    {
        var records = new List<(long, ChunkHash?)>();
        foreach (var chunk in _changed.Keys)
        {
            _changed.TryRemove(chunk, out _);
            lock (Stripe(chunk)) records.Add((chunk, _live[chunk]));
        }
        return records;
    }

    public void ReturnChanges(IEnumerable<(long Chunk, ChunkHash? Entry)> records)
    {
        foreach (var (c, _) in records) _changed[c] = 1;
    }

    /// <summary>Every live entry that differs from the booted index (a journal snapshot).</summary>
    public IEnumerable<(long Chunk, ChunkHash? Entry)> DiffFromBoot()
    {
        for (long c = 0; c < _live.LongLength; c++)
        {
            ChunkHash? e;
            lock (Stripe(c)) e = _live[c];
            if (e != _boot?.EntryAt(c)) yield return (c, e);
        }
    }

    /// <summary>Adds every chunk the disk references now: the live map, the booted index (the
    /// parent of every checkpoint it saves) and its parents. Each live entry is read under its
    /// stripe, and a store batch records its chunks under the same stripes.</summary>
    public void AddReferencedHashesTo(ISet<ChunkHash> set)
    {
        for (long c = 0; c < _live.LongLength; c++)
            lock (Stripe(c)) if (_live[c] is { } h) set.Add(h);
        if (_boot is not null) foreach (var e in _boot.Entries) if (e is { } h) set.Add(h);
        _below.AddHashesTo(set);
    }

    /// <summary>Every stripe, held until disposed.</summary>
    public readonly struct AllStripes : IDisposable
    {
        private readonly object[] _stripes;
        private readonly int _taken;

        internal AllStripes(object[] stripes)
        {
            _stripes = stripes;
            int taken = 0;
            try { for (; taken < stripes.Length; taken++) Monitor.Enter(stripes[taken]); }
            catch { for (int i = taken - 1; i >= 0; i--) Monitor.Exit(stripes[i]); throw; }
            _taken = taken;
        }

        public void Dispose()
        {
            for (int i = _taken - 1; i >= 0; i--) Monitor.Exit(_stripes[i]);
        }
    }

    /// <summary>Some stripes, held until disposed (released in reverse order).</summary>
    public sealed class HeldStripes(int capacity) : IDisposable
    {
        private readonly List<object> _held = new(capacity);

        internal void Enter(object stripe)
        {
            Monitor.Enter(stripe);
            _held.Add(stripe);
        }

        public void Dispose()
        {
            for (int i = _held.Count - 1; i >= 0; i--) Monitor.Exit(_held[i]);
            _held.Clear();
        }
    }
}
