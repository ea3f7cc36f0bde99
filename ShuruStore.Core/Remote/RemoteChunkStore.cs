using System.Buffers;
using System.Collections.Concurrent;
using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Storage;
using ShuruStore.Core.Threading;

namespace ShuruStore.Core.Remote;

/// <summary>Counters of a <see cref="RemoteChunkStore"/>.</summary>
/// <param name="Fetches">Ranged GETs made (read-aheads included).</param>
/// <param name="ChunksFetched">Chunks fetched, verified and kept.</param>
/// <param name="BytesFetched">Bytes received.</param>
/// <param name="Prefetches">Read-ahead fetches started.</param>
/// <param name="PrefetchesDropped">Read-ahead fetches not started because every slot was busy.</param>
/// <param name="FetchFailures">Fetches that failed (object store away, object missing...).</param>
/// <param name="DamagedChunks">Chunks whose remote bytes did not hash to their name (or were cut short).</param>
/// <param name="ChunksEvicted">Fetched chunks removed from the local store to keep it under its limit.</param>
/// <param name="CachedBytes">Bytes of fetched chunks counted against the limit now (with a limit only).</param>
public readonly record struct RemoteChunkStoreStatistics(long Fetches, long ChunksFetched, long BytesFetched, long Prefetches,
    long PrefetchesDropped, long FetchFailures, long DamagedChunks, long ChunksEvicted, long CachedBytes);

/// <summary>A remote object whose bytes for a chunk do not hash to the chunk's name.</summary>
/// <param name="ObjectUri">The object (a pack), as <c>s3://…</c>.</param>
/// <param name="Hash">The chunk.</param>
/// <param name="Offset">Where the chunk starts in the object.</param>
/// <param name="Length">The chunk's length.</param>
/// <param name="Detail">What was wrong.</param>
public sealed record RemoteObjectDamage(string ObjectUri, ChunkHash Hash, long Offset, int Length, string Detail);

/// <summary>
/// The remote tier in front of a local chunk store: every chunk the local store has is served by
/// it, fast paths included (no-wait reads, sendfile ranges); a chunk it lacks that the remote
/// locates is fetched, verified against its name, written into the local store and then served.
/// The local store stays a normal shuru-compatible store; writes go to it only.
/// <para>Rules, and why:</para>
/// <list type="bullet">
/// <item>A remote chunk is used only once its bytes hash to its name. A damaged or short object
/// is never written locally and never returned: the read fails with
/// <see cref="ShuruErrorKind.ChunkCorrupt"/> (EIO at the disk), the object is reported
/// (<see cref="ObjectDamaged"/>, <see cref="DamagedObjects"/>), and the next read asks again.</item>
/// <item>Every fetch ends within the object store's deadline (retries with backoff inside it);
/// a reader waiting for a fetch gets its outcome, so a read of uncached data fails (EIO) within
/// that bound, and works again once the store answers. Reads of cached chunks never wait for
/// the remote.</item>
/// <item>One fetch per chunk at a time: a read that needs a chunk already being fetched waits
/// for that fetch. Many fetches are in flight at once (readers, and read-ahead up to
/// <see cref="RemoteChunkStoreOptions.MaxPrefetches"/>; more read-ahead is dropped, never queued).</item>
/// <item>Sequential readers get read-ahead: packs hold chunks in disk order, so a miss right after
/// a fetched chunk fetches the rest of its group (one ranged GET) and the groups after it; each
/// fetched-ahead group carries a trigger on its first chunk that, when read, fetches one more
/// group at the far end, keeping the window ahead of the reader.</item>
/// <item>With a cache limit, fetched chunks the remote locates are removed least recently used
/// first; nothing else in the local store is ever removed (see <see cref="RemoteChunkStoreOptions"/>).</item>
/// </list>
/// </summary>
public sealed class RemoteChunkStore : ForwardingChunkStore
{
    // Per ordinal state bits.
    private const byte Seen = 1;        // fetched (or being fetched) since this store opened
    private const byte Cached = 2;      // fetched and written into the local store, not evicted since
    private const byte Trigger = 4;     // first chunk of a read-ahead group: reading it extends the read-ahead
    private const byte Referenced = 8;  // read since the eviction clock last passed (with a limit only)

    private enum Outcome : byte { Pending, Stored, InMemory, Damaged }

    private readonly FileChunkStore _cache;
    private readonly IObjectStore _remote;
    private readonly bool _ownsRemote;
    private readonly ChunkLocations _locations;
    private readonly RemoteChunkStoreOptions _options;
    private readonly S3Location _root;
    private readonly object _lock = new();
    private readonly Dictionary<int, Fetch> _inFlight = [];
    private readonly Dictionary<int, int> _pins = [];   // chunks being fetched for a reader or sent: never evicted under them
    private readonly byte[] _state;
    private readonly SemaphoreSlim _prefetchSlots;
    private readonly CancellationTokenSource _closing = new();
    private readonly ConcurrentQueue<int> _clock = new();
    private readonly object _evictLock = new();
    private readonly ConcurrentQueue<RemoteObjectDamage> _damaged = new();
    private int _pendingTriggers;
    private readonly int _readaheadGroups;
    private long _fetches, _chunksFetched, _bytesFetched, _prefetches, _prefetchesDropped, _failures, _damagedCount, _evicted, _cachedBytes;
    private int _disposed;

    /// <param name="cache">The local store: serves what it has, keeps what is fetched.</param>
    /// <param name="remote">The remote store the maps' packs are in.</param>
    /// <param name="root">Where <paramref name="remote"/> is rooted (names objects in messages).</param>
    /// <param name="maps">The chunk maps of the chain(s) this store serves.</param>
    /// <param name="options">Read-ahead and cache limits.</param>
    /// <param name="ownsCache">Dispose <paramref name="cache"/> with this store.</param>
    /// <param name="ownsRemote">Dispose <paramref name="remote"/> (when disposable) with this store.</param>
    public RemoteChunkStore(FileChunkStore cache, IObjectStore remote, S3Location root, IEnumerable<ChunkMap> maps, RemoteChunkStoreOptions? options = null,
        bool ownsCache = true, bool ownsRemote = true)
        : base(cache, ownsCache)
    {
        options ??= RemoteChunkStoreOptions.Default;
        options.Validate();
        _cache = cache;
        _remote = remote ?? throw new ArgumentNullException(nameof(remote));
        _ownsRemote = ownsRemote;
        _options = options;
        _root = root ?? throw new ArgumentNullException(nameof(root));
        _locations = new ChunkLocations(maps, options.GroupChunks);
        _state = new byte[_locations.Count];
        _prefetchSlots = new SemaphoreSlim(options.MaxPrefetches, Math.Max(1, options.MaxPrefetches));
        _readaheadGroups = ReadaheadWithin(options);
        if (options.CacheLimitBytes > 0) CountCachedChunks();
        ReserveThreads(options);
    }

    /// <summary>
    /// Readers of uncached chunks block a thread (the block-device interface is synchronous) while
    /// the fetch they wait for completes on pool threads. Many parallel readers (the NBD server
    /// serves requests on the thread pool) would otherwise hold every pool thread, and the pool adds
    /// threads only slowly, so fetch completions wait behind blocked readers: cold reads crawl.
    /// The pool is therefore kept wide enough from the start for the readers a server has in
    /// flight and the fetches behind them (a lasting <see cref="ThreadPoolFloor"/>).
    /// </summary>
    private static void ReserveThreads(RemoteChunkStoreOptions options) =>
        ThreadPoolFloor.RequireAtLeast(Environment.ProcessorCount * 2 + options.MaxPrefetches + MaxBlockedReaders);

    /// <summary>Readers a server may have blocked on fetches at once that the pool is sized for
    /// (a few NBD connections, each with tens of requests in flight).</summary>
    private const int MaxBlockedReaders = 128;

    /// <summary>Read-ahead groups kept in flight: as many as asked, but with a cache limit no more
    /// than half the limit holds (at least one), because read-ahead past what the cache keeps is
    /// evicted before the reader gets to it and fetched again.</summary>
    private static int ReadaheadWithin(RemoteChunkStoreOptions options)
    {
        if (options.CacheLimitBytes == 0 || options.ReadaheadGroups == 0) return options.ReadaheadGroups;
        long groupBytes = (long)options.GroupChunks * ChunkHasher.ChunkSize;
        return (int)Math.Clamp(options.CacheLimitBytes / 2 / groupBytes, 1, options.ReadaheadGroups);
    }

    /// <summary>Where the chunks this store can fetch are.</summary>
    public ChunkLocations Locations => _locations;

    /// <summary>The options it was opened with.</summary>
    public RemoteChunkStoreOptions Options => _options;

    /// <summary>The remote store (its description names where; never credentials).</summary>
    public string RemoteDescription => _remote.Description;

    /// <summary>Raised (on a pool thread) for each chunk whose remote bytes were damaged.</summary>
    public event EventHandler<RemoteObjectDamage>? ObjectDamaged;

    /// <summary>The damaged objects found lately (the last 64).</summary>
    public IReadOnlyList<RemoteObjectDamage> DamagedObjects => _damaged.ToArray();

    /// <summary>Counters.</summary>
    public RemoteChunkStoreStatistics Statistics => new(Interlocked.Read(ref _fetches), Interlocked.Read(ref _chunksFetched),
        Interlocked.Read(ref _bytesFetched), Interlocked.Read(ref _prefetches), Interlocked.Read(ref _prefetchesDropped),
        Interlocked.Read(ref _failures), Interlocked.Read(ref _damagedCount), Interlocked.Read(ref _evicted), Interlocked.Read(ref _cachedBytes));

    // ---- reads ----

    /// <summary>Present locally, or located in the remote (then a read fetches it).</summary>
    public override bool Contains(ChunkHash hash) => Inner.Contains(hash) || _locations.Contains(hash);

    public override bool TryReadRange(ChunkHash hash, int offset, Span<byte> destination)
    {
        NoteRead(hash);
        if (TryLocal(hash, offset, destination)) return true;
        if (!_locations.TryGetOrdinal(hash, out int ordinal)) return false;
        ReadThrough(ordinal, offset, destination, whole: false, out _);
        return true;
    }

    public override bool TryRead(ChunkHash hash, Span<byte> destination, out int storedLength)
    {
        NoteRead(hash);
        try
        {
            if (Inner.TryRead(hash, destination, out storedLength)) return true;
        }
        catch (ShuruStoreException e) when (e.Kind == ShuruErrorKind.ChunkCorrupt && _locations.Contains(hash))
        {
            // A damaged local copy of a remote chunk: fetch it again (the write replaces the bad file).
        }
        if (!_locations.TryGetOrdinal(hash, out int ordinal)) { storedLength = 0; return false; }
        ReadThrough(ordinal, 0, destination, whole: true, out storedLength);
        return true;
    }

    public override bool TryReadRangeNoWait(ChunkHash hash, int offset, Span<byte> destination)
    {
        NoteRead(hash);
        return Inner.TryReadRangeNoWait(hash, offset, destination);
    }

    public override bool TryLeaseRange(ChunkHash hash, int offset, int length, out FileRange range)
    {
        NoteRead(hash);
        if (_options.CacheLimitBytes == 0 || !_locations.TryGetOrdinal(hash, out int ordinal))
            return Inner.TryLeaseRange(hash, offset, length, out range);
        // With a limit, a fetched chunk is pinned while its file is sent: an eviction would
        // unlink it mid-reply, and a reply whose file changed under it is cut off with the
        // connection. One not kept (evicted, or still being stored) is left to the read path.
        lock (_lock)
        {
            if ((_state[ordinal] & Cached) == 0) { range = default; return false; }
            Pin(ordinal);
        }
        if (!Inner.TryLeaseRange(hash, offset, length, out range))
        {
            lock (_lock) Unpin(ordinal);
            return false;
        }
        range = range with { Lease = new PinnedLease(this, ordinal, range.Lease) };
        return true;
    }

    /// <summary>The lease of a sent range of a fetched chunk: the chunk stays pinned until sent.</summary>
    private sealed class PinnedLease(RemoteChunkStore store, int ordinal, IFileRangeLease inner) : IFileRangeLease
    {
        public bool MayChange => inner.MayChange;

        public bool StillValid(in FileRange range) => inner.StillValid(range with { Lease = inner });

        public void Release(in FileRange range)
        {
            inner.Release(range with { Lease = inner });
            lock (store._lock) store.Unpin(ordinal);
        }
    }

    /// <summary>Keeps a chunk from eviction (one count per user); caller holds <see cref="_lock"/>.</summary>
    private void Pin(int ordinal) => _pins[ordinal] = _pins.GetValueOrDefault(ordinal) + 1;

    /// <summary>Ends one <see cref="Pin"/>; caller holds <see cref="_lock"/>.</summary>
    private void Unpin(int ordinal)
    {
        if (_pins[ordinal] == 1) _pins.Remove(ordinal);
        else _pins[ordinal]--;
    }

    /// <summary>A read of the local store; a damaged local copy of a remote chunk counts as absent
    /// (it is fetched again, and the write replaces it).</summary>
    private bool TryLocal(ChunkHash hash, int offset, Span<byte> destination)
    {
        try { return Inner.TryReadRange(hash, offset, destination); }
        catch (ShuruStoreException e) when (e.Kind == ShuruErrorKind.ChunkCorrupt && _locations.Contains(hash)) { return false; }
    }

    /// <summary>Fires a read-ahead trigger and marks the chunk used (for the eviction clock).
    /// Costs a dictionary lookup only while triggers are pending or a limit is set.</summary>
    private void NoteRead(ChunkHash hash)
    {
        if (Volatile.Read(ref _pendingTriggers) == 0 && _options.CacheLimitBytes == 0) return;
        if (!_locations.TryGetOrdinal(hash, out int ordinal)) return;
        byte s = Volatile.Read(ref _state[ordinal]);
        if ((s & Trigger) != 0)
        {
            bool fired = false;
            lock (_lock)
            {
                if ((_state[ordinal] & Trigger) != 0)
                {
                    _state[ordinal] &= unchecked((byte)~Trigger);
                    _pendingTriggers--;
                    fired = true;
                }
            }
            if (fired) ReadAhead(_locations.GroupOf(ordinal) + _readaheadGroups, 1);
        }
        if (_options.CacheLimitBytes > 0 && (s & Referenced) == 0)
            lock (_lock) _state[ordinal] |= Referenced;
    }

    /// <summary>Serves a chunk from the remote: joins the fetch of it in flight or starts one,
    /// waits for it (bounded by the object store's deadline), then reads what it brought. The
    /// chunk is pinned meanwhile: with a cache limit, fetches that end beside it would otherwise
    /// evict it between its fetch and this read.</summary>
    private void ReadThrough(int ordinal, int offset, Span<byte> destination, bool whole, out int storedLength)
    {
        if (_options.CacheLimitBytes == 0)
        {
            ReadThroughPinned(ordinal, offset, destination, whole, out storedLength);
            return;
        }
        lock (_lock) Pin(ordinal);
        try { ReadThroughPinned(ordinal, offset, destination, whole, out storedLength); }
        finally
        {
            lock (_lock) Unpin(ordinal);
        }
    }

    private void ReadThroughPinned(int ordinal, int offset, Span<byte> destination, bool whole, out int storedLength)
    {
        var hash = _locations.HashAt(ordinal);
        for (int attempt = 0; attempt < 3; attempt++)
        {
            var fetch = FetchFor(ordinal);
            if (fetch is not null)
            {
                Wait(fetch, hash);
                switch (fetch.OutcomeOf(ordinal))
                {
                    case Outcome.Damaged:
                        throw new ShuruStoreException(ShuruErrorKind.ChunkCorrupt,
                            $"chunk {hash}: the remote object {ObjectUri(ordinal)} is damaged ({fetch.DamageOf(ordinal)}); it was not cached or used",
                            ObjectUri(ordinal));
                    case Outcome.InMemory:
                        CopyFetched(fetch, ordinal, offset, destination, whole, out storedLength);
                        return;
                    case Outcome.Pending:
                        throw Failure(fetch, hash, ordinal);
                }
            }
            // Stored in the local store by this fetch or an earlier one: read it from there.
            storedLength = 0;
            if (whole ? Inner.TryRead(hash, destination, out storedLength) : TryLocal(hash, offset, destination)) return;
        }
        throw new ShuruStoreException(ShuruErrorKind.IOError, $"chunk {hash} was fetched from {ObjectUri(ordinal)} but kept disappearing from the local store '{_cache.CasPath}'", _cache.CasPath);
    }

    private void Wait(Fetch fetch, ChunkHash hash)
    {
        try { fetch.Done.Task.Wait(_closing.Token); }
        catch (OperationCanceledException)
        {
            throw new ShuruStoreException(ShuruErrorKind.RemoteUnavailable, $"chunk {hash}: the store is closing", _cache.CasPath);
        }
    }

    private ShuruStoreException Failure(Fetch fetch, ChunkHash hash, int ordinal)
    {
        var e = fetch.Error;
        if (e is ShuruStoreException s) return new ShuruStoreException(s.Kind, $"chunk {hash}: {s.Message}", s.Path ?? ObjectUri(ordinal), s);
        if (e is OperationCanceledException) return new ShuruStoreException(ShuruErrorKind.RemoteUnavailable, $"chunk {hash}: the store is closing", ObjectUri(ordinal));
        return new ShuruStoreException(ShuruErrorKind.IOError, $"chunk {hash}: fetching it from {ObjectUri(ordinal)} failed: {e?.Message}", ObjectUri(ordinal), e);
    }

    private void CopyFetched(Fetch fetch, int ordinal, int offset, Span<byte> destination, bool whole, out int storedLength)
    {
        int at = _locations.OffsetAt(ordinal) - fetch.Start;
        int length = _locations.LengthAt(ordinal);
        var bytes = fetch.Data!.AsSpan(at, length);
        if (whole)
        {
            bytes.CopyTo(destination);
            destination[length..ChunkHasher.ChunkSize].Clear();
            storedLength = length;
            return;
        }
        storedLength = 0;
        int available = Math.Clamp(length - offset, 0, destination.Length);
        if (available > 0) bytes.Slice(offset, available).CopyTo(destination);
        destination[available..].Clear();
    }

    // ---- fetching ----

    /// <summary>The fetch that brings a chunk a reader needs: the one in flight, or a new one
    /// (its group and read-ahead when the reader is sequential, else just the chunk); null when
    /// the chunk was stored locally meanwhile.</summary>
    private Fetch? FetchFor(int ordinal)
    {
        Fetch fetch;
        bool sequential;
        lock (_lock)
        {
            if (_inFlight.TryGetValue(ordinal, out var running)) return running;
            if ((_state[ordinal] & Cached) != 0) return null;
            sequential = ordinal > 0 && (_state[ordinal - 1] & Seen) != 0;
            int end = ordinal + 1;
            if (sequential)
            {
                // The rest of the group, up to the first chunk another fetch brings or brought.
                int groupEnd = _locations.GroupEnd(_locations.GroupOf(ordinal));
                while (end < groupEnd && IsFree(end)) end++;
            }
            // The chunk itself is neither in flight nor stored (checked above): the fetch owns it.
            fetch = Register(ordinal, end, prefetch: false)!;
        }
        Start(fetch);
        if (sequential && _readaheadGroups > 0) ReadAhead(_locations.GroupOf(ordinal) + 1, _readaheadGroups);
        return fetch;
    }

    /// <summary>Starts read-ahead of <paramref name="count"/> groups from <paramref name="firstGroup"/>,
    /// each with a trigger on its first chunk. Chunks already present are not fetched again; a
    /// group finding no free slot is dropped.</summary>
    private void ReadAhead(int firstGroup, int count)
    {
        if (Volatile.Read(ref _disposed) != 0) return;
        for (int g = firstGroup; g < firstGroup + count && g < _locations.GroupCount; g++)
        {
            int first = _locations.GroupFirst(g), end = _locations.GroupEnd(g);
            // Chunks the local store already has (from an earlier run) need no fetch.
            int lo = -1, hi = -1;
            for (int o = first; o < end; o++)
            {
                if ((Volatile.Read(ref _state[o]) & (Seen | Cached)) != 0 || Inner.Contains(_locations.HashAt(o))) continue;
                if (lo < 0) lo = o;
                hi = o + 1;
            }
            lock (_lock)
            {
                if ((_state[first] & Trigger) == 0)
                {
                    _state[first] |= Trigger;
                    _pendingTriggers++;
                }
            }
            if (lo < 0) continue;
            if (!_prefetchSlots.Wait(0))
            {
                Interlocked.Increment(ref _prefetchesDropped);
                lock (_lock)
                {
                    if ((_state[first] & Trigger) != 0) { _state[first] &= unchecked((byte)~Trigger); _pendingTriggers--; }
                }
                return; // every slot busy: the reader fetches the rest itself when it gets there
            }
            Fetch? fetch;
            lock (_lock) fetch = Register(lo, hi, prefetch: true);
            if (fetch is null)
            {
                _prefetchSlots.Release(); // readers got there first: nothing left to fetch
                continue;
            }
            Interlocked.Increment(ref _prefetches);
            Start(fetch);
        }
    }

    /// <summary>A fetch of ordinals [first, end), owning those neither in flight nor stored
    /// already. Only the owner of a chunk verifies and stores it: ranges overlap (a read-ahead
    /// spans a reader's single-chunk fetch), and a second copy written into the local store is
    /// a file created only to be thrown away. The range is trimmed to the first and last chunk
    /// it owns; null when it would own none. Lock held.</summary>
    private Fetch? Register(int first, int end, bool prefetch)
    {
        while (first < end && !IsFree(first)) first++;
        while (end > first && !IsFree(end - 1)) end--;
        if (first == end) return null;
        var fetch = new Fetch(first, end, _locations.OffsetAt(first), prefetch);
        for (int o = first; o < end; o++)
        {
            if (!IsFree(o)) continue;
            _inFlight[o] = fetch;
            _state[o] |= Seen;
            fetch.Own(o);
        }
        return fetch;
    }

    /// <summary>Whether a chunk is neither being fetched nor stored already. Lock held.</summary>
    private bool IsFree(int ordinal) => !_inFlight.ContainsKey(ordinal) && (_state[ordinal] & Cached) == 0;

    private void Start(Fetch fetch) => _ = RunAsync(fetch);

    private async Task RunAsync(Fetch fetch)
    {
        await Task.Yield(); // never run the request on the reader's thread or under a caller's lock
        int end = fetch.End;
        int length = _locations.OffsetAt(end - 1) + _locations.LengthAt(end - 1) - fetch.Start;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(length);
        bool keep = false;
        var stored = new List<int>();
        try
        {
            Interlocked.Increment(ref _fetches);
            int n = await _remote.GetRangeAsync(_locations.PackKeyAt(fetch.First), fetch.Start, buffer.AsMemory(0, length), _closing.Token).ConfigureAwait(false);
            Interlocked.Add(ref _bytesFetched, n);
            var batch = new List<(ChunkHash, ReadOnlyMemory<byte>)>(end - fetch.First);
            var ordinals = new List<int>(end - fetch.First);
            for (int o = fetch.First; o < end; o++)
            {
                if (!fetch.Owns(o)) continue; // another fetch brings it, or brought it
                int at = _locations.OffsetAt(o) - fetch.Start, len = _locations.LengthAt(o);
                var hash = _locations.HashAt(o);
                if (at + len > n) Damaged(fetch, o, $"the object ends {n + fetch.Start} bytes in, before the chunk's end at {fetch.Start + at + len}");
                else if (ChunkHasher.Hash(buffer.AsSpan(at, len)) != hash) Damaged(fetch, o, "its bytes do not hash to the chunk's name");
                else { batch.Add((hash, buffer.AsMemory(at, len))); ordinals.Add(o); }
            }
            if (batch.Count > 0)
            {
                var written = new bool[batch.Count];
                try { Inner.WriteMany(batch, written); }
                catch (Exception) when (!_closing.IsCancellationRequested)
                {
                    // The local store could not keep them (full, failing): readers still get the
                    // verified bytes from memory; the next read fetches them again.
                }
                for (int i = 0; i < ordinals.Count; i++)
                {
                    if (written[i]) { fetch.SetOutcome(ordinals[i], Outcome.Stored); stored.Add(ordinals[i]); }
                    else { fetch.SetOutcome(ordinals[i], Outcome.InMemory); keep = true; }
                }
                Interlocked.Add(ref _chunksFetched, ordinals.Count);
            }
            if (keep) fetch.Data = buffer;
        }
        catch (Exception e)
        {
            fetch.Error = e;
            Interlocked.Increment(ref _failures);
        }
        finally
        {
            lock (_lock)
            {
                for (int o = fetch.First; o < end; o++)
                    if (fetch.Owns(o)) _inFlight.Remove(o);
                foreach (int o in stored) _state[o] |= Cached;
            }
            if (!keep) ArrayPool<byte>.Shared.Return(buffer);
            if (fetch.Prefetch) _prefetchSlots.Release();
            fetch.Done.TrySetResult();
        }
        if (_options.CacheLimitBytes > 0 && stored.Count > 0) KeepUnderLimit(stored);
    }

    private void Damaged(Fetch fetch, int ordinal, string detail)
    {
        fetch.SetOutcome(ordinal, Outcome.Damaged, detail);
        Interlocked.Increment(ref _damagedCount);
        var damage = new RemoteObjectDamage(ObjectUri(ordinal), _locations.HashAt(ordinal), _locations.OffsetAt(ordinal), _locations.LengthAt(ordinal), detail);
        _damaged.Enqueue(damage);
        while (_damaged.Count > 64) _damaged.TryDequeue(out _);
        try { ObjectDamaged?.Invoke(this, damage); }
        catch (Exception) { /* a listener's failure is not the read's */ }
    }

    private string ObjectUri(int ordinal) => _root.Child(_locations.PackKeyAt(ordinal)).ToString();

    // ---- the cache limit ----

    /// <summary>At open: the located chunks the local store already has count against the limit.</summary>
    private void CountCachedChunks()
    {
        foreach (var hash in Inner.Enumerate())
        {
            if (!_locations.TryGetOrdinal(hash, out int o)) continue;
            long length;
            try { length = new FileInfo(_cache.PathOf(hash)).Length; }
            catch (IOException) { continue; }
            _state[o] |= Cached;
            _clock.Enqueue(o);
            _cachedBytes += length;
        }
        if (_cachedBytes > _options.CacheLimitBytes) KeepUnderLimit([]);
    }

    /// <summary>Counts newly stored chunks and, past the limit, removes fetched chunks nobody read
    /// since the clock last passed them (one evictor at a time; the others go on).</summary>
    private void KeepUnderLimit(List<int> stored)
    {
        foreach (int o in stored)
        {
            _clock.Enqueue(o);
            Interlocked.Add(ref _cachedBytes, _locations.LengthAt(o));
        }
        if (Interlocked.Read(ref _cachedBytes) <= _options.CacheLimitBytes || !Monitor.TryEnter(_evictLock)) return;
        try
        {
            // Down to 90 % of the limit, so that not every fetch pays for an eviction.
            long target = _options.CacheLimitBytes - _options.CacheLimitBytes / 10;
            int budget = _clock.Count * 2 + 16;
            while (Interlocked.Read(ref _cachedBytes) > target && budget-- > 0 && _clock.TryDequeue(out int o))
            {
                bool evict;
                lock (_lock)
                {
                    byte s = _state[o];
                    if ((s & Cached) == 0) continue; // already gone
                    evict = (s & Referenced) == 0 && !_inFlight.ContainsKey(o) && !_pins.ContainsKey(o);
                    if (evict) _state[o] &= unchecked((byte)~(Cached | Seen | Referenced));
                    else _state[o] &= unchecked((byte)~Referenced);
                }
                if (!evict) { _clock.Enqueue(o); continue; }
                try { File.Delete(_cache.PathOf(_locations.HashAt(o))); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
                Interlocked.Add(ref _cachedBytes, -_locations.LengthAt(o));
                Interlocked.Increment(ref _evicted);
            }
        }
        finally { Monitor.Exit(_evictLock); }
    }

    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (disposing)
        {
            _closing.Cancel();
            Fetch[] running;
            lock (_lock) running = _inFlight.Values.Distinct().ToArray();
            // Fetches end promptly once cancelled; the local store is closed only after them.
            try { Task.WaitAll(running.Select(f => f.Done.Task).ToArray(), TimeSpan.FromSeconds(10)); }
            catch (AggregateException) { }
            if (_ownsRemote && _remote is IDisposable d) d.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>One ranged GET of consecutive chunks of a pack, and what became of each.</summary>
    private sealed class Fetch(int first, int end, int start, bool prefetch)
    {
        private readonly Outcome[] _outcomes = new Outcome[end - first];
        private readonly bool[] _owned = new bool[end - first];
        private string?[]? _damage;
        public int First { get; } = first;
        public int End { get; } = end;
        /// <summary>Byte offset in the pack of <see cref="First"/>.</summary>
        public int Start { get; } = start;
        public bool Prefetch { get; } = prefetch;
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Exception? Error { get; set; }
        /// <summary>The verified bytes, kept only when the local store could not take some of them.</summary>
        public byte[]? Data { get; set; }
        /// <summary>Marks a chunk as this fetch's to verify and store (set before it starts).</summary>
        public void Own(int ordinal) => _owned[ordinal - First] = true;
        public bool Owns(int ordinal) => _owned[ordinal - First];
        public Outcome OutcomeOf(int ordinal) => ordinal >= First && ordinal < End ? _outcomes[ordinal - First] : Outcome.Pending;
        public string DamageOf(int ordinal) => _damage?[ordinal - First] ?? "damaged";
        public void SetOutcome(int ordinal, Outcome outcome, string? detail = null)
        {
            _outcomes[ordinal - First] = outcome;
            if (detail is not null) (_damage ??= new string?[End - First])[ordinal - First] = detail;
        }
    }
}
