using System.Buffers;
using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Storage;

/// <summary>
/// shuru's copy-on-write disk over a content-addressed chunk store, made safe: verified reads,
/// durable flushes, bounded memory, concurrent access and cycle-free chains.
/// <para>This class is the <see cref="IBlockDevice"/> face; the work is done by objects with
/// state of their own: <see cref="ChunkTable"/> (per-chunk state, and where a chunk's bytes are),
/// <see cref="SavedChunkReader"/> (stored chunks and the base image), <see cref="SpillArea"/>,
/// <see cref="ChunkSaver"/>, <see cref="WriteBehind"/>, <see cref="DirtyBudget"/>,
/// <see cref="LazyIngestion"/> and <see cref="LiveStateJournal"/>. Every read path asks the
/// table where a chunk is and switches on the answer.</para>
/// <para>Writes go to 64 KiB dirty buffers (or in place into the spill file for a chunk already
/// there); past the dirty budget, buffers move to the spill file; flush, FUA and checkpoints turn
/// both into chunks and live-map entries. Writers hold the cut lock shared for a whole request;
/// a checkpoint holds it exclusively, with every stripe, so no multi-chunk write is half in the cut.</para>
/// </summary>
public sealed class CowDisk : IBlockDevice
{
    private const int CS = ChunkHasher.ChunkSize;
    private static readonly byte[] ZeroBuffer = new byte[CS];

    private readonly ChunkTable _table;
    private readonly IReadOnlyList<(string Path, ChunkIndexFile Index)> _parents;
    private readonly ChunkIndexFile? _boot;
    private readonly BaseImage? _base;
    private readonly IChunkStore _store;
    private readonly bool _ownsStore, _readOnly, _storeNoWait, _storeFiles;
    private readonly SavedChunkReader _reader;
    private readonly ChunkBufferPool _pool;
    private readonly SpillArea _spill;
    private readonly ChunkSaver _saver;
    private readonly WriteBehind _writeBehind;
    private readonly DirtyBudget _budget;
    private readonly LazyIngestion? _ingestion;      // null without a base or read-only
    private LiveStateJournal? _journal;               // null without a state file
    private readonly object _flushLock = new();
    private readonly ReaderWriterLockSlim _cutLock = new(LockRecursionPolicy.SupportsRecursion);
    private readonly CancellationTokenSource _closing = new();
    private int _disposed;

    private CowDisk(CowDiskOptions o, IChunkStore store, bool ownsStore, ChunkTable table, ChunkIndexFile? boot,
        IReadOnlyList<(string, ChunkIndexFile)> parents, string? bootPath, BaseImage? baseImage)
    {
        _store = store; _ownsStore = ownsStore; _table = table; _boot = boot; _parents = parents; _base = baseImage;
        BootIndexPath = bootPath; BaseImagePath = baseImage?.Path;
        _readOnly = o.ReadOnly;
        _storeNoWait = (store.Capabilities & ChunkStoreCapabilities.NoWaitReads) != 0;
        _storeFiles = (store.Capabilities & ChunkStoreCapabilities.FileRanges) != 0;
        CasPath = Path.GetFullPath(o.CasPath);
        StatePath = o.StatePath is null ? null : Path.GetFullPath(o.StatePath);
        long budget = Math.Max(CS, o.DirtyBudgetBytes);
        _pool = new ChunkBufferPool((int)Math.Min(budget / CS + ChunkSaver.BatchChunks, 1 << 20));
        _reader = new SavedChunkReader(store, baseImage);
        _spill = new SpillArea(table, _reader, _pool, CasPath);
        _saver = new ChunkSaver(table, store, _spill, _pool, CasPath);
        _writeBehind = new WriteBehind(table, _saver, _closing.Token, WriteBehind.DefaultPumps);
        _budget = new DirtyBudget(budget, table, _saver, _spill, _writeBehind);
        if (baseImage is not null && !_readOnly) _ingestion = new LazyIngestion(table, baseImage, store, _closing.Token);
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
        IReadOnlyList<(string Path, ChunkIndexFile Index)> parents = [];
        IndexChain? chain = null;
        if (options.IndexPath is { } ip && File.Exists(ip))
        {
            chain = IndexChain.Load(ip, new IndexPathResolver(options.WorkingDirectory));
            if (!options.AllowMissingParent)
                chain.RequireComplete($"cannot serve '{chain.Path}'", "allow a missing parent (AllowMissingParent) to serve what the rest of the chain holds");
            top = chain.Top; bootPath = chain.Path; parents = chain.Parents;
            basePath = chain.BaseImagePath ?? options.BaseImagePath;
        }
        else basePath = options.BaseImagePath;
        if (basePath is not null) basePath = Path.GetFullPath(basePath);

        BaseImage? baseImage = basePath is null ? null : BaseImage.Open(basePath);
        IChunkStore? store = null;
        StateJournal? journal = null;
        try
        {
            long size = top?.DiskSize ?? baseImage?.Length ?? 0;
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
            var table = new ChunkTable(size, live, top, new ChunkLayers(parents.Select(p => p.Index), baseImage?.Length ?? 0));

            store = options.ChunkStore ?? new FileChunkStore(options.CasPath, new FileChunkStoreOptions
            {
                ReadOnly = options.ReadOnly,
                Durability = options.Durability,
                Holder = options.Holder is { } holder ? holder with { StatePath = statePath, BootIndexPath = bootPath, BaseImagePath = basePath } : null,
            });
            var header = new StateJournal.Header(size, basePath ?? "", bootPath ?? "", fingerprint);
            var disk = new CowDisk(options, store, options.ChunkStore is null, table, top, parents, bootPath, baseImage)
            {
                MissingParent = chain?.MissingParent,
                ChainWarnings = chain?.Warnings ?? [],
            };
            if (rewriteState && !options.ReadOnly)
            {
                journal?.Dispose();
                journal = StateJournal.Create(statePath!, header, table.DiffFromBoot());
            }
            if (journal is not null) disk._journal = new LiveStateJournal(journal, header, compactAfterRecords: 4 * count + 4096);
            if (!options.ReadOnly) ChunkHasher.WarmUpInBackground(); // writes and lazy ingestion hash chunks
            return disk;
        }
        catch
        {
            journal?.Dispose();
            if (options.ChunkStore is null) store?.Dispose();
            baseImage?.Dispose();
            throw;
        }
    }

    // ---- properties ----

    public long Size => _table.Size;
    /// <summary>No-wait reads and file ranges always: dirty chunks, zero chunks and the base need
    /// nothing from the store (stored chunks take those paths only if the store offers them).</summary>
    public BlockDeviceCapabilities Capabilities => (_readOnly
        ? BlockDeviceCapabilities.ReadOnly | BlockDeviceCapabilities.Extents | BlockDeviceCapabilities.Cache | BlockDeviceCapabilities.MultiConnection
        : BlockDeviceCapabilities.Flush | BlockDeviceCapabilities.Fua | BlockDeviceCapabilities.Trim | BlockDeviceCapabilities.WriteZeroes |
          BlockDeviceCapabilities.FastZero | BlockDeviceCapabilities.Extents | BlockDeviceCapabilities.Cache | BlockDeviceCapabilities.MultiConnection)
        | BlockDeviceCapabilities.NoWaitReads | BlockDeviceCapabilities.FileRanges;
    public int PreferredBlockSize => 4096;
    /// <summary>Payloads are copied into chunk buffers: any address does.</summary>
    public int WriteBufferAlignment => 1;
    /// <summary>The index the disk booted from (absolute), or null in lazy mode.</summary>
    public string? BootIndexPath { get; }
    /// <summary>The base image (absolute), or null.</summary>
    public string? BaseImagePath { get; }
    /// <summary>The chunk store directory (absolute).</summary>
    public string CasPath { get; }
    /// <summary>Where the booted index's chain stops at a parent that does not exist (opened with
    /// <see cref="CowDiskOptions.AllowMissingParent"/>); null when the chain is whole.</summary>
    public MissingParentLink? MissingParent { get; private init; }
    /// <summary>Stored relative paths of the booted chain whose two readings name different files.</summary>
    public IReadOnlyList<string> ChainWarnings { get; private init; } = [];
    /// <summary>The live-state journal (absolute), or null.</summary>
    public string? StatePath { get; }
    /// <summary>Number of 64 KiB chunks.</summary>
    public long ChunkCount => _table.ChunkCount;
    /// <summary>Whether writes are refused.</summary>
    public bool IsReadOnly => _readOnly;
    /// <summary>Counters.</summary>
    public CowDiskStatistics Statistics => new(_saver.ChunksCreated, _ingestion?.Ingested ?? 0, _spill.Moves, _table.DirtyBytes,
        _table.DirtyCount + _table.SpilledCount, _table.SpilledCount);

    private void CheckOpen()
    {
        if (Volatile.Read(ref _disposed) != 0) throw new BlockDeviceException(BlockDeviceError.Shutdown, "the disk is closed");
    }

    private void CheckWritable()
    {
        CheckOpen();
        if (_readOnly) throw new BlockDeviceException(BlockDeviceError.Permission, "the disk is read-only");
    }

    // ---- reading: every path asks the table where the chunk is ----

    public void Read(long offset, Span<byte> buffer)
    {
        CheckOpen();
        _ingestion?.NoteClientIo();
        byte[]? scratch = null;
        try
        {
            while (!buffer.IsEmpty)
            {
                long chunk = offset / CS;
                int inChunk = (int)(offset % CS);
                int n = Math.Min(buffer.Length, CS - inChunk);
                ReadPiece(chunk, inChunk, buffer[..n], ref scratch);
                buffer = buffer[n..]; offset += n;
            }
        }
        finally { if (scratch is not null) ArrayPool<byte>.Shared.Return(scratch); }
    }

    /// <summary>Bytes [<paramref name="inChunk"/>, +dest.Length) of a chunk. A base piece is read
    /// whole so that a non-zero one can be queued for lazy ingestion.</summary>
    private void ReadPiece(long chunk, int inChunk, Span<byte> dest, ref byte[]? scratch)
    {
        ChunkPlace place;
        lock (_table.Stripe(chunk))
        {
            place = _table.Resolve(chunk);
            if (ReadUnsaved(place, chunk, inChunk, dest)) return;
        }
        if (place.Kind != ChunkPlaceKind.Base || _ingestion is null)
        {
            _reader.Read(place, chunk, inChunk, dest);
            return;
        }
        bool whole = inChunk == 0 && dest.Length == CS;
        var piece = whole ? dest : (scratch ??= ArrayPool<byte>.Shared.Rent(CS)).AsSpan(0, CS);
        _reader.Read(place, chunk, 0, piece);
        if (!whole) piece.Slice(inChunk, dest.Length).CopyTo(dest);
        if (!ChunkHasher.IsAllZero(piece)) _ingestion.Queue(chunk);
    }

    /// <summary>Copies unsaved bytes of a chunk, if it has any. Stripe held.</summary>
    private bool ReadUnsaved(ChunkPlace place, long chunk, int inChunk, Span<byte> dest)
    {
        switch (place.Kind)
        {
            case ChunkPlaceKind.Dirty:
                place.Buffer.AsSpan(inChunk, dest.Length).CopyTo(dest);
                return true;
            case ChunkPlaceKind.Spilled:
                _spill.ReadRange(chunk, place.SpilledBlocks, inChunk, dest);
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// Small reads served on the connection's reader thread when nothing in them waits for a disk:
    /// a dirty chunk is copied from memory, a zero chunk is zeros, a stored chunk is read only if
    /// the store has its bytes at hand, a base piece only if the base's bytes are in the page
    /// cache (and it is queued for ingestion, as a Read would). Anything else (a spilled chunk, a
    /// page-cache miss, a store without no-wait reads) answers false, and the ordinary Read serves it.
    /// </summary>
    public bool TryReadNoWait(long offset, Span<byte> buffer)
    {
        if (Volatile.Read(ref _disposed) != 0) return false;
        _ingestion?.NoteClientIo();
        while (!buffer.IsEmpty)
        {
            long chunk = offset / CS;
            int inChunk = (int)(offset % CS);
            int n = Math.Min(buffer.Length, CS - inChunk);
            if (!TryReadPieceNoWait(chunk, inChunk, offset, buffer[..n])) return false;
            buffer = buffer[n..];
            offset += n;
        }
        return true;
    }

    private bool TryReadPieceNoWait(long chunk, int inChunk, long offset, Span<byte> dest)
    {
        ChunkPlace place;
        lock (_table.Stripe(chunk))
        {
            place = _table.Resolve(chunk);
            if (place.Kind == ChunkPlaceKind.Spilled) return false; // a file read: the pool's job
            if (ReadUnsaved(place, chunk, inChunk, dest)) return true;
        }
        if (place.ReadsAsZeros)
        {
            dest.Clear();
            return true;
        }
        if (place.HasHash) return _storeNoWait && _store.TryReadRangeNoWait(place.Hash, inChunk, dest);
        if (!_base!.TryReadNoWait(offset, dest)) return false; // a page-cache miss, or a short base's tail
        _ingestion?.Queue(chunk);
        return true;
    }

    /// <summary>
    /// Reads sent from files instead of copied through a buffer: a chunk the store can lend a
    /// verified file for goes out from its chunk file; a chunk still only in the base goes out
    /// from the base image (and is queued for ingestion, as a Read would). Anything else in the
    /// range (unsaved writes, a zero chunk, a chunk the store cannot lend, the short tail of a
    /// base) sends the whole range down the ordinary Read path.
    /// </summary>
    public bool TryGetFileRanges(long offset, int length, List<FileRange> ranges)
    {
        CheckOpen();
        _ingestion?.NoteClientIo();
        while (length > 0)
        {
            long chunk = offset / CS;
            int inChunk = (int)(offset % CS);
            int n = Math.Min(length, CS - inChunk);
            var place = _table.ResolveNow(chunk);
            switch (place.Kind)
            {
                case ChunkPlaceKind.Live or ChunkPlaceKind.Parent:
                    if (place.Hash.IsZeroChunk || !_storeFiles || !_store.TryLeaseRange(place.Hash, inChunk, n, out var range)) return false;
                    ranges.Add(range);
                    break;
                case ChunkPlaceKind.Base:
                    if (!_base!.TryAddFileRange(offset, n, ranges)) return false;
                    _ingestion?.Queue(chunk);
                    break;
                default:
                    return false;
            }
            offset += n;
            length -= n;
        }
        return true;
    }

    // ---- writing ----

    public void Write(long offset, ReadOnlySpan<byte> data, WriteFlags flags)
    {
        CheckWritable();
        _ingestion?.NoteClientIo();
        _budget.MakeRoomFor(data.Length);
        _cutLock.EnterReadLock();
        try { WriteCore(offset, data); }
        finally { _cutLock.ExitReadLock(); }
        _writeBehind.Start();
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
            bool whole = inChunk == 0 && n == _table.ChunkLength(chunk);
            if (whole && ChunkHasher.IsAllZero(piece)) ZeroChunk(chunk, hole: false);
            else
            {
                lock (_table.Stripe(chunk))
                {
                    var place = _table.Resolve(chunk);
                    if (place.Kind == ChunkPlaceKind.Dirty)
                    {
                        piece.CopyTo(place.Buffer.AsSpan(inChunk));
                        _table.AddDirtyBlocks(chunk, SpillArea.BlocksOf(inChunk, n));
                    }
                    else if (place.Kind == ChunkPlaceKind.Spilled) _spill.WriteInto(chunk, place.SpilledBlocks, inChunk, piece); // in place: no memory
                    else
                    {
                        var buf = _pool.Rent();
                        // A whole-chunk write does not need the old content (a pooled buffer
                        // still needs its tail cleared at the end of an odd-sized disk).
                        if (!whole) _reader.Read(place, chunk, 0, buf.AsSpan(0, CS));
                        else if (n < CS) buf.AsSpan(n).Clear();
                        piece.CopyTo(buf.AsSpan(inChunk));
                        _table.AddDirty(chunk, buf, whole ? ChunkTable.AllBlocks : SpillArea.BlocksOf(inChunk, n));
                    }
                    _table.SetHole(chunk, false);
                    if (whole) _writeBehind.Queue(chunk);
                }
            }
            data = data[n..]; offset += n;
        }
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
        bool named = keepAllocated || _table.ShowsThrough(chunk);
        if (named) _saver.EnsureZeroChunkStored();
        lock (_table.Stripe(chunk))
        {
            if (_table.RemoveDirty(chunk) is { } old) _pool.Return(old);
            if (_table.RemoveSpilled(chunk)) _spill.Release(chunk);
            _table.SetLive(chunk, named ? ChunkHash.ZeroChunk : null);
            _table.SetHole(chunk, hole);
        }
    }

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
            if (inChunk == 0 && n == _table.ChunkLength(chunk)) whole(chunk);
            else partial?.Invoke(offset, n);
            offset += n;
        }
    }

    /// <summary>Prefetch = queue lazy ingestion of the base pieces nothing above covers yet (the
    /// ingestion reads them from the base itself; all-zero pieces are skipped there).</summary>
    public void Cache(long offset, long length)
    {
        CheckOpen();
        if (_ingestion is null) return;
        for (long c = offset / CS; c * CS < offset + length && _base!.Covers(c); c++)
            if (_table.ResolveNow(c).Kind == ChunkPlaceKind.Base) _ingestion.Queue(c);
    }

    // ---- durability ----

    /// <summary>Makes every write completed so far durable: chunks stored and synced, then (with a
    /// state file) the changed live entries appended and fsynced.</summary>
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
            if (firstChunk == 0 && endChunk == long.MaxValue) _saver.StoreAll(parallel: true);
            else _saver.StoreRange(firstChunk, endChunk);
            // Taken after storing: every chunk these entries name is stored, so the sync below
            // makes them all durable before they are journaled.
            var records = _journal is null ? null : _table.TakeChanges();
            try
            {
                _store.Sync();
                _journal?.Append(records!, _table, _store);
            }
            catch (Exception e)
            {
                if (records is not null) _table.ReturnChanges(records);
                if (e is BlockDeviceException) throw;
                throw DiskErrors.StoreFailure(e, _journal is null ? $"cannot sync chunk store '{CasPath}'" : $"cannot flush to '{CasPath}' / state '{StatePath}'");
            }
            RestartStoreLogIfLong();
        }
    }

    /// <summary>The store's log of names this disk stored or relied on is started afresh once it
    /// holds this many names, or twice as many as the disk relied on at the last restart if that
    /// is more: then what the disk stored and overwrote since can be collected by other processes,
    /// and rewriting the log costs at most one name per name logged.</summary>
    internal long LogRestartMinimum { get; set; } = 1024;

    private long _logRestartAt;

    /// <summary>Starts the store's log afresh (<see cref="IChunkStore.RestartLog"/>) when it has
    /// grown past its threshold, with the names the disk relies on now that its booted index does
    /// not cover. Every stripe and the ingestion are held meanwhile, so no store of this disk is
    /// between logging a name and recording it in the live map. A failure leaves the old log,
    /// which stays a superset.</summary>
    private void RestartStoreLogIfLong()
    {
        if (_readOnly || _store.LoggedNames < Math.Max(LogRestartMinimum, _logRestartAt)) return;
        // A booted index a collector can read is a root of this disk's registration; one it
        // cannot (an s3:// index) is not, so its names stay in the log.
        bool bootIsRoot = BootIndexPath is not null && File.Exists(BootIndexPath);
        var reliedOn = new HashSet<ChunkHash>();
        using (_ingestion is null ? default : _ingestion.HoldBack())
        using (_table.HoldAll())
        {
            if (bootIsRoot) { foreach (var (_, e) in _table.DiffFromBoot()) if (e is { } h) reliedOn.Add(h); }
            else _table.AddReferencedHashesTo(reliedOn);
            try { _store.RestartLog(reliedOn); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return; } // tried again at the next sync point
        }
        _logRestartAt = 2L * reliedOn.Count;
    }

    /// <summary>Journal length (records) past which it is rewritten as a snapshot (tests).</summary>
    internal long JournalCompactRecords
    {
        get => _journal?.CompactAfterRecords ?? 0;
        set { if (_journal is not null) _journal.CompactAfterRecords = value; }
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

        _ingestion?.WaitForQueued(); // ingested pieces are recorded, as shuru's checkpoint would record them
        if (!_readOnly)
        {
            try { _saver.StoreAll(parallel: true); } // most of the work outside the global lock
            catch (BlockDeviceException e) { throw DiskErrors.AsEngineError(e, CasPath); }
        }
        ChunkHash?[] snapshot;
        _cutLock.EnterWriteLock();
        try
        {
            using var all = _table.HoldAll();
            if (!_readOnly)
            {
                try { _saver.StoreAll(parallel: false); } // this thread holds every stripe
                catch (BlockDeviceException e) { throw DiskErrors.AsEngineError(e, CasPath); }
            }
            snapshot = _table.SnapshotLive();
        }
        finally { _cutLock.ExitWriteLock(); }
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
            Chain = IndexChain.ForCheckpoint(full, index, parents, BaseImagePath, MissingParent),
        };
    }

    /// <summary>Every chunk the disk references now: the live map (booted index plus everything
    /// stored since), the booted index itself (the parent of every checkpoint it saves) and its
    /// parents. For garbage collection; unsaved writes are not chunks yet.</summary>
    public IReadOnlyCollection<ChunkHash> GetReferencedChunks()
    {
        var set = new HashSet<ChunkHash>();
        _table.AddReferencedHashesTo(set);
        return set;
    }

    // ---- extents ----

    public void GetExtents(long offset, long length, List<Extent> extents)
    {
        CheckOpen();
        long end = Math.Min(Size, offset + length);
        const long MaxChunksPerCall = 1 << 20; // the client asks again for the rest
        long pos = offset;
        var baseRun = new BaseImage.DataRun();
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

    /// <summary>Unsaved and stored chunks are data (the zero chunk is zero, a trimmed one a hole);
    /// chunks falling through to the base are data unless the base has a hole over the whole chunk.</summary>
    private ExtentFlags Classify(long chunk, ref BaseImage.DataRun baseRun)
    {
        var place = _table.ResolveNow(chunk);
        return place.Kind switch
        {
            ChunkPlaceKind.Dirty or ChunkPlaceKind.Spilled => ExtentFlags.Data,
            ChunkPlaceKind.Live when place.Hash.IsZeroChunk => place.Trimmed ? ExtentFlags.Hole | ExtentFlags.Zero : ExtentFlags.Zero,
            ChunkPlaceKind.Parent when place.Hash.IsZeroChunk => ExtentFlags.Zero,
            ChunkPlaceKind.Live or ChunkPlaceKind.Parent => ExtentFlags.Data,
            ChunkPlaceKind.Base when _base!.HasData(chunk, ref baseRun) => ExtentFlags.Data,
            _ => ExtentFlags.Hole | ExtentFlags.Zero,
        };
    }

    // ---- lifetime ----

    /// <summary>Waits until every lazy ingestion queued so far is done (tests).</summary>
    internal void WaitForIngestion() => _ingestion?.WaitForQueued();

    /// <summary>Test hook: behave like a killed process — drop unsaved writes and release file
    /// handles (and the state file lock) without flushing anything.</summary>
    internal void SimulateCrash()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        StopWorkers();
        lock (_flushLock) _journal?.Abandon();
        _base?.Dispose();
        _spill.Dispose();
        if (_ownsStore) _store.Dispose(); // a killed process releases its descriptors too (no sync here)
    }

    /// <summary>Closes the disk. With a state file, unsaved writes are flushed first (a clean stop
    /// loses nothing); without one, they are dropped as in shuru (only checkpoints persist).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        StopWorkers();
        try
        {
            if (_journal is not null && !_readOnly) FlushCore();
        }
        finally
        {
            _journal?.Dispose();
            _base?.Dispose();
            _spill.Dispose();
            if (_ownsStore) _store.Dispose();
        }
    }

    private void StopWorkers()
    {
        _closing.Cancel();
        _ingestion?.WaitStopped();
        _writeBehind.WaitStopped();
    }
}
