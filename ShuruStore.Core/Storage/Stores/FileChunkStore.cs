using ShuruStore.Core.BlockDevices;

namespace ShuruStore.Core.Storage;

/// <summary>What a <see cref="FileChunkStore"/> is opened with.</summary>
public sealed record FileChunkStoreOptions
{
    /// <summary>Never write; a store that does not exist yet reads every chunk as missing.</summary>
    public bool ReadOnly { get; init; }
    /// <summary>Verified chunk files kept open for fast reads (0: none, every read opens its file).
    /// The process-wide open-file budget may allow fewer.</summary>
    public int OpenChunkFiles { get; init; } = FileChunkStore.DefaultOpenChunkFiles;
    /// <summary>How Sync makes published chunks durable.</summary>
    public ChunkDurabilityMode Durability { get; init; } = ChunkDurabilityMode.Auto;
    /// <summary>Who registers in the store while it is open for writing (<see cref="StoreLease"/>);
    /// null: no registration (a scratch store nobody else collects).</summary>
    public StoreHolder? Holder { get; init; } = new("writer");
}

/// <summary>
/// Chunks as files at <c>&lt;cas&gt;/chunks/&lt;64 hex&gt;</c>, byte-compatible with shuru.
/// Three parts, each with its own state: <see cref="ChunkFileReader"/> (verified reads, open
/// files kept for warm reads and sendfile), <see cref="ChunkFilePublisher"/> (the one way a chunk
/// gets its name) and <see cref="ChunkDurability"/> (what Sync does).
/// <para>Nothing may reference a chunk (index, state journal) before a Sync returned: names are
/// published before their content is durable, so one sync per flush replaces one per chunk. A
/// power loss can therefore leave a name whose content never reached the disk; such a chunk is
/// referenced by nothing, and a writer that finds a name it did not write in this process
/// verifies the content before deduplicating against it (a wrong one is replaced).</para>
/// </summary>
public sealed class FileChunkStore : IChunkStore
{
    /// <summary>Chunks held open when nothing else is said: a 1 GiB working set of 64 KiB chunks.</summary>
    public const int DefaultOpenChunkFiles = 16384;

    private readonly bool _readOnly;
    private readonly ChunkFileReader _reader;
    private readonly ChunkDurability? _durability;
    private readonly ChunkFilePublisher? _publisher;
    private readonly StoreLease? _lease;

    /// <summary>Opens (and unless read-only, creates) the store under <paramref name="casPath"/>.</summary>
    public FileChunkStore(string casPath, bool readOnly = false)
        : this(casPath, new FileChunkStoreOptions { ReadOnly = readOnly }) { }

    /// <summary>As above, keeping at most <paramref name="openChunkFiles"/> verified chunk files open.</summary>
    public FileChunkStore(string casPath, bool readOnly, int openChunkFiles)
        : this(casPath, new FileChunkStoreOptions { ReadOnly = readOnly, OpenChunkFiles = openChunkFiles }) { }

    public FileChunkStore(string casPath, FileChunkStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        CasPath = Path.GetFullPath(casPath);
        ChunksPath = Path.Combine(CasPath, "chunks");
        _readOnly = options.ReadOnly;
        try
        {
            // Read-only over a store that does not exist yet is allowed (e.g. serving a base image
            // read-only); every chunk then reads as missing, which is an error, never zeros.
            if (!_readOnly) Directory.CreateDirectory(ChunksPath);
            else if (File.Exists(CasPath))
                throw new ShuruStoreException(ShuruErrorKind.StoreInvalid, $"chunk store '{CasPath}' is a file, not a directory", CasPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ShuruStoreException(ShuruErrorKind.StoreInvalid, $"chunk store '{CasPath}' is unusable: {e.Message}", CasPath, e);
        }
        _reader = new ChunkFileReader(ChunksPath, options.OpenChunkFiles);
        if (_readOnly) return;
        try { _durability = ChunkDurability.Create(options.Durability, ChunksPath); }
        catch (IOException e)
        {
            _reader.Dispose();
            throw new ShuruStoreException(ShuruErrorKind.StoreInvalid, $"chunk store '{CasPath}' is unusable: {e.Message}", CasPath, e);
        }
        _durability.OnFailure = _reader.ForgetAll;
        if (options.Holder is { } holder)
        {
            try { _lease = StoreLease.Take(CasPath, holder); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _durability.Dispose();
                _reader.Dispose();
                throw new ShuruStoreException(ShuruErrorKind.StoreInvalid, $"cannot register in chunk store '{CasPath}': {e.Message}", CasPath, e);
            }
        }
        _publisher = new ChunkFilePublisher(ChunksPath, _reader, _durability, _lease);
    }

    /// <summary>The store root (holds <c>chunks/</c>).</summary>
    public string CasPath { get; }
    /// <summary>The flat directory of chunk files.</summary>
    public string ChunksPath { get; }

    /// <summary>Local files: warm reads without waiting, and sendfile from verified chunk files.</summary>
    public ChunkStoreCapabilities Capabilities => ChunkStoreCapabilities.NoWaitReads | ChunkStoreCapabilities.FileRanges;

    /// <summary>Path of a chunk's file. The name comes from a validated hash, never raw index text.</summary>
    public string PathOf(ChunkHash hash) => _reader.PathOf(hash);

    public bool Contains(ChunkHash hash) => File.Exists(PathOf(hash));

    public bool TryRead(ChunkHash hash, Span<byte> destination, out int storedLength) => _reader.TryRead(hash, destination, out storedLength);

    public bool TryReadRange(ChunkHash hash, int offset, Span<byte> destination) => _reader.TryReadRange(hash, offset, destination);

    public bool TryReadRangeNoWait(ChunkHash hash, int offset, Span<byte> destination) => _reader.TryReadRangeNoWait(hash, offset, destination);

    public bool TryLeaseRange(ChunkHash hash, int offset, int length, out FileRange range) => _reader.TryLeaseRange(hash, offset, length, out range);

    public int WriteMany(IReadOnlyList<(ChunkHash Hash, ReadOnlyMemory<byte> Data)> chunks, bool[] stored, bool syncSoon = false)
    {
        if (_publisher is null) throw new InvalidOperationException("the chunk store is open read-only");
        return _publisher.Publish(chunks, stored, syncSoon);
    }

    /// <summary>Makes every chunk published (or relied on) so far durable, content and name; see
    /// <see cref="ChunkDurability"/> for the fail-stop rule.</summary>
    public void Sync() => _durability?.Sync();

    public long LoggedNames => _lease?.LoggedNames ?? 0;

    public void RestartLog(IReadOnlyCollection<ChunkHash> reliedOn) => _lease?.Restart(reliedOn);

    public IEnumerable<ChunkHash> Enumerate()
    {
        if (!Directory.Exists(ChunksPath)) yield break;
        foreach (var f in Directory.EnumerateFiles(ChunksPath))
            if (ChunkHash.TryParse(Path.GetFileName(f.AsSpan()), out var h)) yield return h;
    }

    /// <summary>This store's registration while it is open for writing, or null.</summary>
    public StoreLease? Lease => _lease;

    /// <summary>Test and diagnostics view: chunk files held open now.</summary>
    internal int OpenChunkFiles => _reader.OpenFiles;

    /// <summary>Test hook: runs after a batch's files are written and before any is named.</summary>
    internal Action? BeforeBatchRename
    {
        get => _publisher?.BeforeNaming;
        set { if (_publisher is not null) _publisher.BeforeNaming = value; }
    }

    /// <summary>Test hook: runs inside <see cref="Sync"/> before the real work (a throw is a failed sync).</summary>
    internal Action? SyncFault
    {
        get => _durability?.Fault;
        set { if (_durability is not null) _durability.Fault = value; }
    }

    /// <summary>Background syncs started so far (tests).</summary>
    internal long EarlySyncs => _durability?.BackgroundSyncs ?? 0;

    /// <summary>Closes the chunk files held open for reads (each once no read is using it). A read
    /// after this still works, uncached.</summary>
    public void Dispose()
    {
        _reader.Dispose();
        _durability?.Dispose();
        _lease?.Dispose();
    }
}
