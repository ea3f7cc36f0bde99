using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.Win32.SafeHandles;
using ShuruStore.Core.BlockDevices;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>
/// shuru's copy-on-write disk over a content-addressed chunk store, made safe: verified reads,
/// durable flushes, bounded memory, concurrent access and cycle-free chains.
/// <para>A chunk reads from, in order: unsaved (dirty) writes in memory, unsaved chunks moved to
/// the spill file, the live map (the booted index plus everything stored since), the booted
/// index's parents nearest first, the base image (lazy ingestion), zeros. Writes go to 64 KiB
/// dirty buffers (or in place into the spill file for a chunk already there); past the dirty
/// budget, buffers move to the spill file; flush, FUA and checkpoints turn both into chunks and
/// live-map entries.</para>
/// <para>Locking: one striped lock per chunk guards that chunk's dirty buffer and live entry, so
/// two writes to one chunk never lose an update and lazy ingestion never overwrites a newer
/// write. A checkpoint takes every stripe to get a consistent cut.</para>
/// </summary>
public sealed partial class CowDisk : IBlockDevice
{
    private const int CS = ChunkHasher.ChunkSize;
    private const int StripeCount = 1024;
    private static readonly byte[] ZeroBuffer = new byte[CS];

    private readonly object[] _stripes = Enumerable.Range(0, StripeCount).Select(_ => new object()).ToArray();
    private readonly ChunkHash?[] _live;                 // guarded by stripe; null = ZERO
    private readonly ChunkIndexFile? _boot;              // the booted index (immutable): journal diffs, show-through
    private readonly ConcurrentDictionary<long, byte[]> _dirty = new();   // mutated under stripe
    private readonly ConcurrentDictionary<long, uint> _dirtyBlocks = new(); // 4 KiB blocks written since the buffer was filled; under stripe
    private readonly ConcurrentDictionary<long, uint> _spilledChunks = new(); // unsaved, in the spill file: its valid blocks; under stripe
    private readonly ConcurrentDictionary<long, byte> _changed = new();   // live entries not yet journaled
    private readonly ConcurrentDictionary<long, byte> _holes = new();     // zero-hash chunks trimmed/zeroed as holes
    private readonly IReadOnlyList<(string Path, ChunkIndexFile Index)> _parents;
    private readonly SafeFileHandle? _base;
    private readonly long _baseLength;
    private readonly IChunkStore _store;
    private readonly bool _ownsStore;
    private readonly bool _readOnly;
    private readonly long _budget;
    // Dirty chunk buffers are reused, not left to the GC: a 64 KiB array per write churned gen2.
    // Never more arrays live than the budget allows at once, so the pool adds nothing to the peak.
    private readonly ChunkBufferPool _chunkPool;
    // Dirty chunks are stored in batches (FileChunkStore.WriteMany); a Sync makes them durable.
    private const int StoreBatchChunks = 128;
    private readonly SemaphoreSlim _spillGate = new(2, 2);
    private SpillFile? _spillFile;                       // created on the first spill
    private readonly object _spillFileLock = new();
    private readonly ConcurrentDictionary<long, byte> _spillClaims = new();
    private readonly object _flushLock = new();
    // Writers hold it shared for a whole request; a checkpoint holds it exclusively so no
    // multi-chunk write is half in the cut.
    private readonly ReaderWriterLockSlim _cutLock = new(LockRecursionPolicy.SupportsRecursion);
    private readonly StateJournal.Header _stateHeader;
    private StateJournal? _journal;
    private long _dirtyBytes, _written, _ingested, _spilled;
    private int _zeroChunkStored, _disposed;


    // Write-behind: a chunk written whole by one request is most likely part of a sequential
    // stream that will not come back to it, so it is stored right away, in the background: the
    // hashing and file creation overlap the transfer instead of all waiting for the final flush.
    // Chunks written piecemeal (random I/O) are not: storing each version of a chunk that is still
    // being rewritten makes chunk files nobody will reference.
    private readonly ConcurrentQueue<long> _writeBehindQueue = new();
    private readonly ConcurrentDictionary<long, byte> _writeBehindPending = new();
    private int _writeBehindRunning; // pumps queued or running (at most MaxWriteBehindPumps)

    private CowDisk(CowDiskOptions o, IChunkStore store, bool ownsStore, long size, ChunkHash?[] live, ChunkIndexFile? boot,
        IReadOnlyList<(string, ChunkIndexFile)> parents, string? bootPath, string? basePath, SafeFileHandle? baseHandle, long baseLength,
        StateJournal.Header header)
    {
        _store = store; _ownsStore = ownsStore; Size = size; _live = live; _boot = boot; _parents = parents;
        BootIndexPath = bootPath; BaseImagePath = basePath; _base = baseHandle; _baseLength = baseLength;
        _readOnly = o.ReadOnly; _budget = Math.Max(CS, o.DirtyBudgetBytes); _stateHeader = header;
        _chunkPool = new ChunkBufferPool((int)Math.Min(_budget / CS + StoreBatchChunks, 1 << 20));
        CasPath = Path.GetFullPath(o.CasPath);
        StatePath = o.StatePath is null ? null : Path.GetFullPath(o.StatePath);
    }

    /// <summary>Opens a disk as shuru's server start does: an existing index is the live index and
    /// its fallback is the base; otherwise lazy mode over the base with every entry ZERO. A
    /// positive <see cref="CowDiskOptions.DiskSize"/> grows the disk (never shrinks).</summary>
    public static CowDisk Open(CowDiskOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrEmpty(options.CasPath)) throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, "CasPath is required");
        if (options.DiskSize < 0 || options.DiskSize > ChunkIndexFile.MaxDiskSize)
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, $"disk size {options.DiskSize} is out of range");

        string? bootPath = null, basePath;
        ChunkIndexFile? top = null;
        IReadOnlyList<(string, ChunkIndexFile)> parents = [];
        if (options.IndexPath is { } ip && File.Exists(ip))
        {
            var chain = IndexChain.Load(ip);
            top = chain.Top; bootPath = chain.Path; parents = chain.Parents;
            basePath = chain.BaseImagePath ?? options.BaseImagePath;
        }
        else basePath = options.BaseImagePath;
        if (basePath is not null) basePath = Path.GetFullPath(basePath);

        SafeFileHandle? baseHandle = null;
        long baseLength = 0;
        if (basePath is not null)
        {
            if (FileStatusCalls.DescribeNonFile(basePath) is { } what)
                throw new ShuruStoreException(ShuruErrorKind.BaseImageMissing, $"base image '{basePath}' is {what}, not a disk image", basePath);
            try
            {
                baseHandle = File.OpenHandle(basePath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                baseLength = RandomAccess.GetLength(baseHandle);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ShuruStoreException(ShuruErrorKind.BaseImageMissing,
                    $"base image '{basePath}' does not exist or cannot be opened: {e.Message}", basePath, e);
            }
        }

        IChunkStore? store = null;
        StateJournal? journal = null;
        try
        {
            long size = top?.DiskSize ?? baseLength;
            size = Math.Max(size, options.DiskSize);

            byte[] fingerprint = new byte[32];
            if (bootPath is not null) ChunkHasher.Hash(File.ReadAllBytes(bootPath)).CopyTo(fingerprint);

            // The state journal may record a larger (grown) size; read it before sizing the map.
            List<(long Chunk, ChunkHash? Hash)> records = [];
            string? statePath = options.StatePath is null ? null : Path.GetFullPath(options.StatePath);
            bool rewriteState = false;
            if (statePath is not null && FileStatusCalls.DescribeNonFile(statePath) is { } notFile)
                throw new ShuruStoreException(ShuruErrorKind.StateInvalid, $"state file '{statePath}' is {notFile}, not a file", statePath);
            if (statePath is not null && File.Exists(statePath))
            {
                StateJournal.Header h;
                try { (h, records, journal) = StateJournal.Open(statePath, options.ReadOnly, ChunkIndexFile.ChunkCountFor(ChunkIndexFile.MaxDiskSize)); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                { throw new ShuruStoreException(ShuruErrorKind.StateInvalid, $"cannot read state file '{statePath}': {e.Message}", statePath, e); }
                if (h.BasePath != (basePath ?? "") || h.BootIndexPath != (bootPath ?? "") || !h.BootFingerprint.AsSpan().SequenceEqual(fingerprint))
                    throw new ShuruStoreException(ShuruErrorKind.StateInvalid,
                        $"state file '{statePath}' belongs to another disk (base '{h.BasePath}', booted index '{h.BootIndexPath}')", statePath);
                if (h.DiskSize != size) rewriteState = true;
                size = Math.Max(size, h.DiskSize);
            }
            else if (statePath is not null && !options.ReadOnly) rewriteState = true;

            if (size <= 0) throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, "the disk would be empty: give a base image, an index or a disk size");
            long count = ChunkIndexFile.ChunkCountFor(size);
            var live = new ChunkHash?[count];
            if (top is not null) Array.Copy(top.Entries, live, top.Entries.Length);
            foreach (var (c, hsh) in records) if (c < count) live[c] = hsh;

            store = options.ChunkStore ?? new FileChunkStore(options.CasPath, options.ReadOnly);
            var header = new StateJournal.Header(size, basePath ?? "", bootPath ?? "", fingerprint);
            var disk = new CowDisk(options, store, options.ChunkStore is null, size, live, top, parents, bootPath, basePath, baseHandle, baseLength, header);
            if (rewriteState && !options.ReadOnly)
            {
                journal?.Dispose();
                journal = StateJournal.Create(statePath!, header, disk.DiffFromBoot());
            }
            disk._journal = journal;
            disk.JournalCompactRecords = 4 * count + 4096;
            if (!options.ReadOnly) ChunkHasher.WarmUpInBackground(); // writes and lazy ingestion hash chunks
            return disk;
        }
        catch
        {
            journal?.Dispose();
            if (options.ChunkStore is null) store?.Dispose();
            baseHandle?.Dispose();
            throw;
        }
    }

    // ---- properties ----

    public long Size { get; }
    public BlockDeviceCapabilities Capabilities => _readOnly
        ? BlockDeviceCapabilities.ReadOnly | BlockDeviceCapabilities.Extents | BlockDeviceCapabilities.Cache | BlockDeviceCapabilities.MultiConnection
        : BlockDeviceCapabilities.Flush | BlockDeviceCapabilities.Fua | BlockDeviceCapabilities.Trim | BlockDeviceCapabilities.WriteZeroes |
          BlockDeviceCapabilities.FastZero | BlockDeviceCapabilities.Extents | BlockDeviceCapabilities.Cache | BlockDeviceCapabilities.MultiConnection;
    public int PreferredBlockSize => 4096;
    /// <summary>The index the disk booted from (absolute), or null in lazy mode.</summary>
    public string? BootIndexPath { get; }
    /// <summary>The base image (absolute), or null.</summary>
    public string? BaseImagePath { get; }
    /// <summary>The chunk store directory (absolute).</summary>
    public string CasPath { get; }
    /// <summary>The live-state journal (absolute), or null.</summary>
    public string? StatePath { get; }
    /// <summary>Number of 64 KiB chunks.</summary>
    public long ChunkCount => _live.LongLength;
    /// <summary>Whether writes are refused.</summary>
    public bool IsReadOnly => _readOnly;
    /// <summary>Counters.</summary>
    public CowDiskStatistics Statistics => new(Interlocked.Read(ref _written), Interlocked.Read(ref _ingested),
        Interlocked.Read(ref _spilled), Interlocked.Read(ref _dirtyBytes), _dirty.Count + _spilledChunks.Count, _spilledChunks.Count);

    private object Stripe(long chunk) => _stripes[(int)(chunk % StripeCount)];
    private int ChunkLength(long chunk) => (int)Math.Min(CS, Size - chunk * CS);

    private void CheckOpen()
    {
        if (Volatile.Read(ref _disposed) != 0) throw new BlockDeviceException(BlockDeviceError.Shutdown, "the disk is closed");
    }

    private void CheckWritable()
    {
        CheckOpen();
        if (_readOnly) throw new BlockDeviceException(BlockDeviceError.Permission, "the disk is read-only");
    }

    // ---- reading ----

    public void Read(long offset, Span<byte> buffer)
    {
        CheckOpen();
        NoteClientIo();
        byte[]? scratch = null;
        try
        {
            while (!buffer.IsEmpty)
            {
                long chunk = offset / CS;
                int inChunk = (int)(offset % CS);
                int n = Math.Min(buffer.Length, CS - inChunk);
                if (n == CS) ReadChunk(chunk, buffer[..CS], ingest: true);
                else if (!TryReadStoredRange(chunk, inChunk, buffer[..n]))
                {
                    scratch ??= ArrayPool<byte>.Shared.Rent(CS);
                    ReadChunk(chunk, scratch.AsSpan(0, CS), ingest: true);
                    scratch.AsSpan(inChunk, n).CopyTo(buffer);
                }
                buffer = buffer[n..]; offset += n;
            }
        }
        finally { if (scratch is not null) ArrayPool<byte>.Shared.Return(scratch); }
    }

    /// <summary>A partial read of a chunk that a stored hash provides (this index or a parent):
    /// served from the store's range read, which after the first verification reads only the
    /// range. False when the chunk is dirty or comes from the base (the caller reads it whole).</summary>
    private bool TryReadStoredRange(long chunk, int inChunk, Span<byte> dest)
    {
        ChunkHash? hash;
        lock (Stripe(chunk))
        {
            if (_dirty.ContainsKey(chunk)) return false;
            if (_spilledChunks.ContainsKey(chunk)) { ReadSpilledRange(chunk, inChunk, dest); return true; }
            hash = _live[chunk];
        }
        if ((hash ?? ParentEntry(chunk)) is not { } h) return false;
        ReadStoredRange(h, chunk, inChunk, dest);
        return true;
    }

    /// <summary>A range of a stored chunk; missing or damaged is EIO naming both chunks.</summary>
    private void ReadStoredRange(ChunkHash h, long chunk, int inChunk, Span<byte> dest)
    {
        if (h.IsZeroChunk) { dest.Clear(); return; } // synthesised, never read from disk
        bool found;
        try { found = _store.TryReadRange(h, inChunk, dest); }
        catch (ShuruStoreException e)
        { throw new BlockDeviceException(BlockDeviceError.IO, $"disk chunk {chunk}: {e.Message}", e); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new BlockDeviceException(BlockDeviceError.IO, $"disk chunk {chunk}: cannot read chunk {h}: {e.Message}", e); }
        if (!found)
            throw new BlockDeviceException(BlockDeviceError.IO, $"disk chunk {chunk}: chunk {h} is missing from the chunk store");
    }

    /// <summary>Fills <paramref name="dest"/> (64 KiB) with the current content of a chunk.</summary>
    private void ReadChunk(long chunk, Span<byte> dest, bool ingest)
    {
        ChunkHash? live;
        lock (Stripe(chunk))
        {
            if (_dirty.TryGetValue(chunk, out var d)) { d.CopyTo(dest); return; }
            if (_spilledChunks.ContainsKey(chunk)) { ReadSpilledRange(chunk, 0, dest[..CS]); return; }
            live = _live[chunk];
        }
        if ((live ?? ParentEntry(chunk)) is { } h) { ReadStored(h, chunk, dest); return; }
        if (!ReadBase(chunk, dest, out int len)) { dest.Clear(); return; }
        if (!ingest || _readOnly || ChunkHasher.IsAllZero(dest[..len])) return;
        QueueIngestion(chunk); // lazy ingestion, as shuru, but in the background (CowDisk.Ingestion.cs)
    }

    private void ReadStored(ChunkHash h, long chunk, Span<byte> dest)
    {
        if (h.IsZeroChunk) { dest.Clear(); return; } // synthesised, never read from disk
        try { _store.Read(h, dest); }
        catch (ShuruStoreException e)
        { throw new BlockDeviceException(BlockDeviceError.IO, $"disk chunk {chunk}: {e.Message}", e); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new BlockDeviceException(BlockDeviceError.IO, $"disk chunk {chunk}: cannot read chunk {h}: {e.Message}", e); }
    }

    /// <summary>Reads the base piece of a chunk; false when the base does not cover it.</summary>
    private bool ReadBase(long chunk, Span<byte> dest, out int len)
    {
        len = 0;
        long start = chunk * CS;
        if (_base is null || start >= _baseLength) return false;
        len = ReadBaseRange(start, dest[..CS]);
        return true;
    }

    /// <summary>Reads the base from <paramref name="start"/>; past its end reads as zeros.
    /// Returns how many bytes the base provided.</summary>
    private int ReadBaseRange(long start, Span<byte> dest)
    {
        int len = _base is null || start >= _baseLength ? 0 : (int)Math.Min(dest.Length, _baseLength - start);
        int total = 0;
        try
        {
            while (total < len)
            {
                int n = RandomAccess.Read(_base!, dest[total..len], start + total);
                if (n == 0) break;
                total += n;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            throw new BlockDeviceException(BlockDeviceError.IO, $"cannot read base image '{BaseImagePath}' at {start}: {e.Message}", e);
        }
        if (total < len)
            throw new BlockDeviceException(BlockDeviceError.IO, $"base image '{BaseImagePath}' is shorter than when it was opened (offset {start + total})");
        dest[len..].Clear();
        return len;
    }

    /// <summary>Whether anything below the live map would show through at this chunk if its
    /// entry were ZERO (then a zeroed chunk must be recorded as the zero-chunk hash).</summary>
    private bool ShowsThrough(long chunk)
    {
        if (_boot?.EntryAt(chunk) is not null) return true; // a checkpoint's parent is the booted index
        foreach (var (_, p) in _parents) if (p.EntryAt(chunk) is not null) return true;
        return _base is not null && chunk * CS < _baseLength;
    }

    // ---- writing ----

    public void Write(long offset, ReadOnlySpan<byte> data, WriteFlags flags)
    {
        CheckWritable();
        NoteClientIo();
        MakeRoomFor(data.Length);
        _cutLock.EnterReadLock();
        try { WriteCore(offset, data); }
        finally { _cutLock.ExitReadLock(); }
        StartWriteBehind();
        AfterWrite(flags, offset, data.Length);
    }

    private void WriteCore(long offset, ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            long chunk = offset / CS;
            int inChunk = (int)(offset % CS);
            int n = Math.Min(data.Length, CS - inChunk);
            var piece = data[..n];
            bool whole = inChunk == 0 && n == ChunkLength(chunk);
            if (whole && ChunkHasher.IsAllZero(piece)) ZeroChunk(chunk, hole: false);
            else
            {
                lock (Stripe(chunk))
                {
                    if (_dirty.TryGetValue(chunk, out var buf))
                    {
                        piece.CopyTo(buf.AsSpan(inChunk));
                        _dirtyBlocks[chunk] = _dirtyBlocks.TryGetValue(chunk, out var written) ? written | BlocksOf(inChunk, n) : AllBlocks;
                    }
                    else if (_spilledChunks.ContainsKey(chunk)) WriteIntoSpill(chunk, inChunk, piece); // in place: no memory
                    else
                    {
                        buf = _chunkPool.Rent();
                        // A whole-chunk write does not need the old content (a pooled buffer
                        // still needs its tail cleared at the end of an odd-sized disk).
                        if (!whole) ReadChunk(chunk, buf, ingest: false);
                        else if (n < CS) buf.AsSpan(n).Clear();
                        piece.CopyTo(buf.AsSpan(inChunk));
                        _dirty[chunk] = buf;
                        _dirtyBlocks[chunk] = whole ? AllBlocks : BlocksOf(inChunk, n);
                        Interlocked.Add(ref _dirtyBytes, CS);
                    }
                    _holes.TryRemove(chunk, out _);
                    if (whole && _writeBehindPending.TryAdd(chunk, 0)) _writeBehindQueue.Enqueue(chunk);
                }
            }
            data = data[n..]; offset += n;
        }
    }

    /// <summary>
    /// Spills chunks out of memory (to the spill file) before a write is applied when it would
    /// take unsaved data past the budget. If they cannot be moved (disk full), the write fails
    /// before it changes anything: memory stays bounded while the disk is full, and a failed write
    /// never reads back (found by review: spilling after applying did neither).
    /// </summary>
    private void MakeRoomFor(long bytes)
    {
        if (Interlocked.Read(ref _dirtyBytes) + Math.Min(bytes, _budget) > _budget) Spill(_budget - Math.Min(bytes, _budget));
    }

    private void AfterWrite(WriteFlags flags, long offset, long length)
    {
        // FUA: only this request's chunks need storing; the journal append covers every change.
        if ((flags & WriteFlags.Fua) != 0) FlushCore(offset / CS, (offset + length + CS - 1) / CS);
    }

    /// <summary>Records a whole chunk as zeros without storing anything: the zero-chunk hash when
    /// something below would otherwise show through, else ZERO.</summary>
    /// <param name="chunk">The chunk to zero.</param>
    /// <param name="hole">Report the chunk as a hole afterwards (TRIM, plain WRITE_ZEROES).</param>
    /// <param name="keepAllocated">WRITE_ZEROES with NO_HOLE: record the zero chunk even when
    /// nothing below shows through, so the range stays allocated (never reported as a hole).</param>
    private void ZeroChunk(long chunk, bool hole, bool keepAllocated = false)
    {
        bool named = keepAllocated || ShowsThrough(chunk);
        if (named) EnsureZeroChunkStored();
        lock (Stripe(chunk))
        {
            if (_dirty.TryRemove(chunk, out var old)) { Interlocked.Add(ref _dirtyBytes, -CS); _chunkPool.Return(old); }
            _dirtyBlocks.TryRemove(chunk, out _);
            if (_spilledChunks.TryRemove(chunk, out _)) _spillFile!.Release(chunk);
            var entry = named ? ChunkHash.ZeroChunk : (ChunkHash?)null;
            if (_live[chunk] != entry) { _live[chunk] = entry; _changed[chunk] = 1; }
            if (hole) _holes[chunk] = 1; else _holes.TryRemove(chunk, out _);
        }
    }

    /// <summary>The zero chunk is never read from disk, but shuru reads every named chunk, so
    /// its file is written once before any index can name it.</summary>
    private void EnsureZeroChunkStored()
    {
        if (Volatile.Read(ref _zeroChunkStored) != 0) return;
        try { _store.Write(ChunkHash.ZeroChunk, ZeroBuffer); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw StoreFailure(e, $"cannot store the zero chunk {ChunkHash.ZeroChunk}"); }
        Volatile.Write(ref _zeroChunkStored, 1);
    }

    private static BlockDeviceException StoreFailure(Exception e, string what) =>
        new(Errno.IsNoSpace(e) ? BlockDeviceError.NoSpace : BlockDeviceError.IO, $"{what}: {e.Message}", e);

    public void Trim(long offset, long length, WriteFlags flags)
    {
        CheckWritable();
        // Only whole chunks are discarded; a partial trim may leave old data (allowed by NBD).
        _cutLock.EnterReadLock();
        try { ForWholeChunks(offset, length, c => ZeroChunk(c, hole: true), partial: null); }
        finally { _cutLock.ExitReadLock(); }
        if ((flags & WriteFlags.Fua) != 0) FlushCore(0, 0); // metadata only: sync + journal
    }

    public void WriteZeroes(long offset, long length, WriteFlags flags)
    {
        CheckWritable();
        bool aligned = offset % CS == 0 && ((offset + length) % CS == 0 || offset + length == Size);
        if ((flags & WriteFlags.FastZero) != 0 && !aligned)
            throw new BlockDeviceException(BlockDeviceError.NotSupported, "zeroing a partial 64 KiB chunk is a read-modify-write, no faster than writing");
        bool hole = (flags & WriteFlags.NoHole) == 0;
        _cutLock.EnterReadLock();
        try { ForWholeChunks(offset, length, c => ZeroChunk(c, hole, keepAllocated: !hole), partial: (o, n) => WriteCore(o, ZeroBuffer.AsSpan(0, n))); }
        finally { _cutLock.ExitReadLock(); }
        AfterWrite(flags, offset, length);
    }

    private void ForWholeChunks(long offset, long length, Action<long> whole, Action<long, int>? partial)
    {
        long end = offset + length;
        while (offset < end)
        {
            long chunk = offset / CS;
            int inChunk = (int)(offset % CS);
            int n = (int)Math.Min(end - offset, CS - inChunk);
            if (inChunk == 0 && n == ChunkLength(chunk)) whole(chunk);
            else partial?.Invoke(offset, n);
            offset += n;
        }
    }

    public void Cache(long offset, long length)
    {
        CheckOpen();
        if (_readOnly || _base is null) return;
        // Prefetch = queue lazy ingestion of the base pieces nothing above covers yet (the
        // ingestion reads them from the base itself; all-zero pieces are skipped there).
        for (long c = offset / CS; c * CS < offset + length && c * CS < _baseLength; c++)
        {
            bool covered;
            lock (Stripe(c)) covered = _live[c] is not null || _dirty.ContainsKey(c) || _spilledChunks.ContainsKey(c);
            if (covered || _parents.Any(p => p.Index.EntryAt(c) is not null)) continue;
            QueueIngestion(c);
        }
    }

    // ---- storing dirty chunks ----

    /// <summary>Hashes and stores a batch of dirty chunks (durable at the next Sync; see
    /// <see cref="IChunkStore.WriteMany"/>) and records them in the live map. Holds the batch's
    /// stripes (taken in ascending order, as a checkpoint takes them) so no write changes a buffer
    /// between hashing and recording; until its name exists a chunk reads from its dirty buffer.
    /// On failure every dirty buffer of the batch is kept (shuru dropped every remaining unsaved chunk).</summary>
    private void StoreDirtyBatch(IReadOnlyList<long> chunks)
    {
        var stripes = new SortedSet<int>();
        foreach (var c in chunks) stripes.Add((int)(c % StripeCount));
        var held = new List<object>(stripes.Count);
        var scratch = new List<byte[]>();
        try
        {
            foreach (var st in stripes) { Monitor.Enter(_stripes[st]); held.Add(_stripes[st]); }
            var items = new List<(long Chunk, ChunkHash? Entry, int Batch, bool Spilled)>(chunks.Count);
            var batch = new List<(ChunkHash, ReadOnlyMemory<byte>)>(chunks.Count);
            foreach (var chunk in chunks)
            {
                bool spilled = false;
                if (!_dirty.TryGetValue(chunk, out var buf))
                {
                    if (!_spilledChunks.ContainsKey(chunk)) continue;
                    // Read back into a scratch buffer for hashing and storing; the chunk stays in
                    // the spill file until stored, so a failure keeps it there (memory stays bounded).
                    buf = _chunkPool.Rent();
                    scratch.Add(buf);
                    ReadSpilledRange(chunk, 0, buf.AsSpan(0, CS));
                    spilled = true;
                }
                if (ChunkHasher.IsAllZero(buf.AsSpan(0, CS)))
                {
                    bool through = ShowsThrough(chunk);
                    if (through) EnsureZeroChunkStored();
                    items.Add((chunk, through ? ChunkHash.ZeroChunk : null, -1, spilled));
                }
                else
                {
                    // Always a full 64 KiB chunk (also at the end of an odd-sized disk), as shuru writes them.
                    var h = ChunkHasher.Hash(buf.AsSpan(0, CS));
                    items.Add((chunk, h, batch.Count, spilled));
                    batch.Add((h, buf.AsMemory(0, CS)));
                }
            }
            var stored = new bool[batch.Count];
            Exception? failure = null;
            if (batch.Count > 0)
            {
                try { Interlocked.Add(ref _written, _store.WriteMany(batch, stored, syncSoon: true)); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                { failure = StoreFailure(e, $"cannot store {batch.Count - stored.Count(x => x)} chunk(s) (disk chunks {items[0].Chunk}..{items[^1].Chunk}) in '{CasPath}'"); }
            }
            // Record what is stored; a chunk that failed keeps its dirty buffer or spill-file copy.
            foreach (var (chunk, entry, bi, spilled) in items)
            {
                if (bi >= 0 && !stored[bi]) continue;
                _live[chunk] = entry;
                _changed[chunk] = 1;
                if (spilled)
                {
                    _spilledChunks.TryRemove(chunk, out _);
                    _spillFile!.Release(chunk);
                }
                else if (_dirty.TryRemove(chunk, out var buf))
                {
                    _dirtyBlocks.TryRemove(chunk, out _);
                    _chunkPool.Return(buf);
                    Interlocked.Add(ref _dirtyBytes, -CS);
                }
            }
            if (failure is not null) throw failure;
        }
        finally
        {
            for (int i = held.Count - 1; i >= 0; i--) Monitor.Exit(held[i]);
            foreach (var b in scratch) _chunkPool.Return(b);
        }
    }

    /// <summary>Over budget: move dirty chunks to the spill file, a batch at a time (they stay
    /// unsaved; nothing else changes). At most two writers spill at once, on disjoint chunks; the
    /// others wait here, which is what bounds the memory.</summary>
    private void Spill(long target)
    {
        _spillGate.Wait();
        try
        {
            while (Interlocked.Read(ref _dirtyBytes) > target)
            {
                // Chunks still being written go to the spill file; chunks waiting for write-behind
                // (complete) are stored by this writer instead: moving them would only add a copy
                // out and back in before the same store. Mostly complete chunks (a sequential
                // stream): store first, without scanning the dirty set past them.
                var claimed = new List<long>(StoreBatchChunks);
                bool store = _writeBehindPending.Count * 2 >= _dirty.Count && ClaimComplete(claimed);
                if (!store && !ClaimIncomplete(claimed)) store = ClaimComplete(claimed);
                if (claimed.Count == 0) return;
                try
                {
                    claimed.Sort();
                    if (store) StoreDirtyBatch(claimed);
                    else MoveToSpillFile(claimed);
                }
                finally { foreach (var c in claimed) _spillClaims.TryRemove(c, out _); }
            }
        }
        finally { _spillGate.Release(); }
    }

    /// <summary>Claims dirty chunks queued for write-behind (a stale queue entry, stored or zeroed
    /// since, is skipped: claiming it would make no room). True if any was claimed.</summary>
    private bool ClaimComplete(List<long> claimed)
    {
        foreach (var kv in _writeBehindPending)
        {
            if (claimed.Count >= StoreBatchChunks) break;
            if (_dirty.ContainsKey(kv.Key) && _spillClaims.TryAdd(kv.Key, 0)) claimed.Add(kv.Key);
        }
        return claimed.Count > 0;
    }

    /// <summary>Claims dirty chunks not queued for write-behind. True if any was claimed.</summary>
    private bool ClaimIncomplete(List<long> claimed)
    {
        foreach (var kv in _dirty)
        {
            if (claimed.Count >= StoreBatchChunks) break;
            if (!_writeBehindPending.ContainsKey(kv.Key) && _spillClaims.TryAdd(kv.Key, 0)) claimed.Add(kv.Key);
        }
        return claimed.Count > 0;
    }

    private void StartWriteBehind()
    {
        if (_writeBehindQueue.IsEmpty) return;
        // A second pump only once a backlog builds up (a stream faster than one pump stores).
        int want = Interlocked.Read(ref _dirtyBytes) > 2L * StoreBatchChunks * CS ? MaxWriteBehindPumps : 1;
        for (int running = Volatile.Read(ref _writeBehindRunning); running < want; running = Volatile.Read(ref _writeBehindRunning))
        {
            if (Interlocked.CompareExchange(ref _writeBehindRunning, running + 1, running) != running) continue;
            ThreadPool.UnsafeQueueUserWorkItem(static s => ((CowDisk)s!).WriteBehindPump(), this);
            return;
        }
    }

    /// <summary>Write-behind pumps that may run at once. One pump (hash, create, link per chunk)
    /// was the serial bottleneck of a fresh-layer sequential write on two cores: 1 GiB with
    /// nbdcopy -C 4, write + flush 1.70-1.86 s with one pump against 1.38-1.68 s with two, both
    /// with early writeback (docs/performance.md, steps 30 and 32). Measured with two; more cores are not assumed to help
    /// (the batches contend for stripes and the directory).</summary>
    private static readonly int MaxWriteBehindPumps = Math.Min(2, Environment.ProcessorCount);

    /// <summary>Stores queued complete chunks, a batch at a time, while there are any (no parked
    /// worker). A failure (disk full) leaves them unsaved: the next flush stores or reports them.</summary>
    private void WriteBehindPump()
    {
        var batch = new List<long>(StoreBatchChunks);
        while (true)
        {
            while (true)
            {
                batch.Clear();
                while (batch.Count < StoreBatchChunks && _writeBehindQueue.TryDequeue(out var c))
                {
                    _writeBehindPending.TryRemove(c, out _);
                    if (_spillClaims.TryAdd(c, 0)) batch.Add(c);
                }
                if (batch.Count == 0) break;
                try
                {
                    batch.Sort();
                    if (Volatile.Read(ref _disposed) == 0) StoreDirtyBatch(batch);
                }
                catch { /* still unsaved (dirty or spilled): the next flush stores it or says why not */ }
                finally { foreach (var c in batch) _spillClaims.TryRemove(c, out _); }
            }
            Interlocked.Decrement(ref _writeBehindRunning);
            // A chunk queued after the last TryDequeue but before the decrement found a pump running.
            if (_writeBehindQueue.IsEmpty || Interlocked.CompareExchange(ref _writeBehindRunning, 1, 0) != 0) return;
        }
    }

    private void WaitWriteBehindStopped() => SpinUntilZero(ref _writeBehindRunning);

    /// <summary>Waits for a background worker flag to drop to zero (workers check _disposed and
    /// finish their current batch quickly).</summary>
    private static void SpinUntilZero(ref int running)
    {
        var spin = new SpinWait();
        while (Volatile.Read(ref running) != 0) spin.SpinOnce(sleep1Threshold: 10);
    }

    /// <summary>The nearest parent index's entry for a chunk (the booted index's parents, nearest
    /// first), or null when none has one.</summary>
    private ChunkHash? ParentEntry(long chunk)
    {
        foreach (var (_, p) in _parents)
            if (p.EntryAt(chunk) is { } ph) return ph;
        return null;
    }

    /// <summary>Stores every dirty chunk, in batches. <paramref name="parallel"/>: a few batches at
    /// once, so hashing and writing overlap the syncs. Never parallel while this thread holds
    /// stripe locks (the helpers would wait for them forever).</summary>
    private void StoreAllDirty(bool parallel)
    {
        var keys = new List<long>(_dirty.Count + _spilledChunks.Count);
        foreach (var kv in _dirty) keys.Add(kv.Key);
        foreach (var kv in _spilledChunks) keys.Add(kv.Key);
        keys.Sort();
        StoreBatches(keys, parallel);
    }

    private void StoreBatches(List<long> chunks, bool parallel)
    {
        Exception? first = null;
        var batches = new List<List<long>>();
        for (int i = 0; i < chunks.Count; i += StoreBatchChunks)
            batches.Add(chunks.GetRange(i, Math.Min(StoreBatchChunks, chunks.Count - i)));
        if (parallel && batches.Count > 1)
        {
            Parallel.ForEach(batches, new ParallelOptions { MaxDegreeOfParallelism = 4 }, batch =>
            {
                try { StoreDirtyBatch(batch); }
                catch (Exception e) { Interlocked.CompareExchange(ref first, e, null); }
            });
        }
        else
        {
            foreach (var batch in batches)
            {
                try { StoreDirtyBatch(batch); }
                catch (Exception e) { first ??= e; } // keep going: one bad batch does not drop the others
            }
        }
        if (first is not null) throw first;
    }

    /// <summary>Makes every write completed so far durable: chunks fsynced, chunk directory
    /// fsynced, then (with a state file) the changed live entries appended and fsynced.</summary>
    public void Flush()
    {
        CheckOpen();
        FlushCore();
    }

    private void FlushCore(long firstChunk = 0, long endChunk = long.MaxValue)
    {
        if (_readOnly) return;
        lock (_flushLock)
        {
            if (firstChunk == 0 && endChunk == long.MaxValue) StoreAllDirty(parallel: true);
            else
            {
                var range = new List<long>();
                for (long c = firstChunk; c < Math.Min(endChunk, ChunkCount); c++) if (_dirty.ContainsKey(c) || _spilledChunks.ContainsKey(c)) range.Add(c);
                StoreBatches(range, parallel: false);
            }
            List<(long, ChunkHash?)>? records = null;
            if (_journal is not null)
            {
                records = [];
                foreach (var chunk in _changed.Keys)
                {
                    _changed.TryRemove(chunk, out _);
                    lock (Stripe(chunk)) records.Add((chunk, _live[chunk]));
                }
            }
            try
            {
                // After collecting records: every chunk they name is stored, so this makes them all durable.
                _store.Sync();
                if (_journal is not null && records!.Count > 0)
                {
                    _journal.Append(records);
                    if (_journal.RecordCount > JournalCompactRecords) CompactJournal();
                }
            }
            catch (Exception e)
            {
                if (records is not null) foreach (var (c, _) in records) _changed[c] = 1;
                if (e is BlockDeviceException) throw;
                throw StoreFailure(e, _journal is null ? $"cannot sync chunk store '{CasPath}'" : $"cannot flush to '{CasPath}' / state '{StatePath}'");
            }
        }
    }

    /// <summary>Journal length (records) past which it is rewritten as a snapshot: a few times the
    /// map size, so compaction costs little compared to the appends it saves.</summary>
    internal long JournalCompactRecords { get; set; }

    private IEnumerable<(long, ChunkHash?)> DiffFromBoot()
    {
        for (long c = 0; c < _live.LongLength; c++)
        {
            ChunkHash? e;
            lock (Stripe(c)) e = _live[c];
            if (e != _boot?.EntryAt(c)) yield return (c, e);
        }
    }

    private void CompactJournal()
    {
        var snapshot = DiffFromBoot().ToList();
        _store.Sync(); // entries stored since the last sync may appear in the snapshot
        _journal!.Compact(_stateHeader, snapshot);
    }

    // ---- checkpoints ----

    /// <summary>
    /// Saves the whole live map as a shuru index: parent_path = the index the disk booted from
    /// (null in lazy mode), fallback_path = the base image. The cut is consistent: every write
    /// answered before the cut is in, none half-applied. Refuses to overwrite the booted index,
    /// any index of its chain, the base image or the state file.
    /// </summary>
    public CheckpointInfo SaveCheckpoint(string path)
    {
        CheckOpen();
        string full = Path.GetFullPath(path);
        var forbidden = new List<string?> { BootIndexPath, BaseImagePath, StatePath };
        forbidden.AddRange(_parents.Select(p => p.Path));
        if (forbidden.Any(f => f is not null && string.Equals(Path.GetFullPath(f), full, StringComparison.Ordinal)))
            throw new ShuruStoreException(ShuruErrorKind.CheckpointOverwritesChain,
                $"checkpoint '{full}' would overwrite the booted index, an index of its chain, the base image or the state file", full);

        WaitForIngestion();
        if (!_readOnly)
        {
            try { StoreAllDirty(parallel: true); } // most of the work outside the global lock
            catch (BlockDeviceException e) { throw Wrap(e); }
        }
        ChunkHash?[] snapshot;
        int taken = 0;
        _cutLock.EnterWriteLock();
        try
        {
            for (; taken < StripeCount; taken++) Monitor.Enter(_stripes[taken]);
            if (!_readOnly)
            {
                try { StoreAllDirty(parallel: false); } // this thread holds every stripe
                catch (BlockDeviceException e) { throw Wrap(e); }
            }
            snapshot = (ChunkHash?[])_live.Clone();
        }
        finally
        {
            for (int i = taken - 1; i >= 0; i--) Monitor.Exit(_stripes[i]);
            _cutLock.ExitWriteLock();
        }
        if (!_readOnly)
        {
            try { _store.Sync(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            { throw new ShuruStoreException(Errno.IsNoSpace(e) ? ShuruErrorKind.NoSpace : ShuruErrorKind.IOError, $"cannot sync chunk store '{CasPath}': {e.Message}", CasPath, e); }
        }
        var index = new ChunkIndexFile(Size, BootIndexPath, BaseImagePath, snapshot);
        index.Save(full);
        long set = snapshot.LongCount(e => e is not null);
        var parents = BootIndexPath is null ? _parents : [(BootIndexPath, _boot!), .. _parents];
        return new CheckpointInfo(full, BootIndexPath, BaseImagePath, Size, snapshot.LongLength, set, snapshot.LongLength - set)
        {
            Chain = IndexChain.ForCheckpoint(full, index, parents, BaseImagePath),
        };

        ShuruStoreException Wrap(BlockDeviceException e) =>
            new(e.Error == BlockDeviceError.NoSpace ? ShuruErrorKind.NoSpace : ShuruErrorKind.IOError, e.Message, CasPath, e);
    }

    /// <summary>Every chunk the disk references now: the live map (booted index plus everything
    /// stored since), the booted index itself (the parent of every checkpoint it saves) and its
    /// parents. For garbage collection; unsaved writes are not chunks yet. Each live entry is read
    /// under its stripe lock, and a flush stores a chunk and records it under that same lock.</summary>
    public IReadOnlyCollection<ChunkHash> GetReferencedChunks()
    {
        var set = new HashSet<ChunkHash>();
        for (long c = 0; c < _live.LongLength; c++)
            lock (Stripe(c)) if (_live[c] is { } h) set.Add(h);
        if (_boot is not null) foreach (var e in _boot.Entries) if (e is { } h) set.Add(h);
        foreach (var (_, p) in _parents)
            foreach (var e in p.Entries) if (e is { } h) set.Add(h);
        return set;
    }

    // ---- extents ----

    public void GetExtents(long offset, long length, List<Extent> extents)
    {
        CheckOpen();
        long end = Math.Min(Size, offset + length);
        const long MaxChunksPerCall = 1 << 20; // the client asks again for the rest
        long pos = offset;
        var baseRun = new BaseDataRun();
        ExtentFlags? runFlags = null;
        long runStart = offset;
        for (long scanned = 0; pos < end && scanned < MaxChunksPerCall; scanned++)
        {
            long chunk = pos / CS;
            long next = Math.Min(end, (chunk + 1) * CS);
            var f = Classify(chunk, ref baseRun);
            if (runFlags != f)
            {
                if (runFlags is { } rf) extents.Add(new Extent(pos - runStart, rf));
                runFlags = f; runStart = pos;
            }
            pos = next;
        }
        if (runFlags is { } last) extents.Add(new Extent(pos - runStart, last));
        else extents.Add(new Extent(Math.Max(1, end - offset), ExtentFlags.Hole | ExtentFlags.Zero));
    }

    /// <summary>The base image's next data run [Start, End) at or after the last chunk asked
    /// about, from SEEK_DATA / SEEK_HOLE; End == 0 means not looked up yet.</summary>
    private struct BaseDataRun
    {
        public long Start, End;
        public bool Unknown; // lseek unsupported: every base chunk counts as data
    }

    /// <summary>Whether the base has data in a chunk (a chunk entirely in a hole of a sparse base
    /// reads as zeros, so BLOCK_STATUS may call it a hole and sparse copies skip it).</summary>
    private bool BaseHasData(long chunk, ref BaseDataRun run)
    {
        if (!OperatingSystem.IsLinux() || run.Unknown) return true;
        long start = chunk * CS, end = Math.Min(start + CS, _baseLength);
        if (start >= run.End)
        {
            int fd = (int)_base!.DangerousGetHandle();
            long ds = SparseFiles.lseek(fd, start, SparseFiles.SEEK_DATA);
            if (ds < 0)
            {
                if (System.Runtime.InteropServices.Marshal.GetLastPInvokeError() != Errno.ENXIO) { run.Unknown = true; return true; }
                // ENXIO also means "past the end of the file": if the base shrank under us, the
                // range is not a hole but missing data, and reading it must be EIO, never zeros.
                if (RandomAccess.GetLength(_base) < _baseLength) { run.Unknown = true; return true; }
                run.Start = run.End = long.MaxValue; // no data from here to the end
            }
            else
            {
                long de = SparseFiles.lseek(fd, ds, SparseFiles.SEEK_HOLE);
                run.Start = ds;
                run.End = de < 0 ? long.MaxValue : Math.Max(de, ds + 1);
            }
        }
        return run.Start < end;
    }

    private ExtentFlags Classify(long chunk, ref BaseDataRun baseRun)
    {
        lock (Stripe(chunk))
        {
            if (_dirty.ContainsKey(chunk) || _spilledChunks.ContainsKey(chunk)) return ExtentFlags.Data;
            if (_live[chunk] is { } h)
                return !h.IsZeroChunk ? ExtentFlags.Data
                    : _holes.ContainsKey(chunk) ? ExtentFlags.Hole | ExtentFlags.Zero : ExtentFlags.Zero;
        }
        if (ParentEntry(chunk) is { } ph) return ph.IsZeroChunk ? ExtentFlags.Zero : ExtentFlags.Data;
        return _base is not null && chunk * CS < _baseLength && BaseHasData(chunk, ref baseRun) ? ExtentFlags.Data : ExtentFlags.Hole | ExtentFlags.Zero;
    }

    // ---- lifetime ----

    /// <summary>Test hook: behave like a killed process — drop unsaved writes and release file
    /// handles (and the state file lock) without flushing anything.</summary>
    internal void SimulateCrash()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        WaitIngestionStopped();
        WaitWriteBehindStopped();
        lock (_flushLock) _journal?.Abandon();
        _base?.Dispose();
        _spillFile?.Dispose();
        if (_ownsStore) _store.Dispose(); // a killed process releases its descriptors too (no sync here)
    }

    /// <summary>Closes the disk. With a state file, unsaved writes are flushed first (a clean stop
    /// loses nothing); without one, they are dropped as in shuru (only checkpoints persist).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        WaitIngestionStopped();
        WaitWriteBehindStopped();
        try
        {
            if (_journal is not null && !_readOnly) FlushCore();
        }
        finally
        {
            _journal?.Dispose();
            _base?.Dispose();
            _spillFile?.Dispose();
            if (_ownsStore) _store.Dispose();
        }
    }
}

/// <summary>64 KiB dirty-chunk buffers, reused. New ones live on the pinned object heap: dirty
/// buffers survive several GCs, and on the normal heap every gen0/gen1 collection copied them
/// while promoting. Contents are not zeroed (writers fill or clear every byte they use).</summary>
internal sealed class ChunkBufferPool(int maxRetained)
{
    private readonly ConcurrentStack<byte[]> _free = new();
    private int _count;

    public byte[] Rent()
    {
        if (_free.TryPop(out var b)) { Interlocked.Decrement(ref _count); return b; }
        return GC.AllocateUninitializedArray<byte>(ChunkHasher.ChunkSize, pinned: true);
    }

    public void Return(byte[] buffer)
    {
        if (Interlocked.Increment(ref _count) > maxRetained) { Interlocked.Decrement(ref _count); return; }
        _free.Push(buffer);
    }
}
