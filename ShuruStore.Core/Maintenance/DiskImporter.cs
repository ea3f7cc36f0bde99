using System.Diagnostics;
using ShuruStore.Core.Storage;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Maintenance;

/// <summary>What to import and where.</summary>
public sealed class DiskImportOptions
{
    /// <summary>The raw image to read.</summary>
    public required string ImagePath { get; init; }
    /// <summary>The chunk store to write chunks to (created if missing).</summary>
    public required string CasPath { get; init; }
    /// <summary>The index file to write (atomically, only once every chunk is durable).</summary>
    public required string IndexPath { get; init; }
    /// <summary>First byte of the image to import (becomes byte 0 of the disk).</summary>
    public long Offset { get; init; }
    /// <summary>Bytes to import; null = to the end of the image.</summary>
    public long? Length { get; init; }
    /// <summary>Import on top of this index: chunks equal to what the parent chain provides are
    /// left <c>ZERO</c> (inherited) and the new index names it as its parent.</summary>
    public string? ParentIndexPath { get; init; }
    /// <summary>Import on top of this flat image: chunks equal to the image are left <c>ZERO</c>
    /// (read from it) and the new index names it as its fallback. Default: the parent's base.</summary>
    public string? FallbackPath { get; init; }
    /// <summary>Replace an existing index file (never the parent chain, the fallback or the image).</summary>
    public bool Overwrite { get; init; }
    /// <summary>The directory relative paths stored in the parent chain are first resolved
    /// against (<see cref="IndexPathResolver"/>); null: the process current directory.</summary>
    public string? WorkingDirectory { get; init; }
}

/// <summary>What an import did.</summary>
/// <param name="IndexPath">The index written.</param>
/// <param name="ImagePath">The image read.</param>
/// <param name="ParentPath">The parent index the new index names, if any.</param>
/// <param name="FallbackPath">The fallback image the new index names, if any.</param>
/// <param name="DiskSize">Size of the disk the index describes.</param>
/// <param name="ChunkCount">Entries in the index.</param>
/// <param name="ChunksNew">Chunks this import added to the store.</param>
/// <param name="ChunksPresent">Non-zero chunks the store already held (deduplicated).</param>
/// <param name="ChunksZero">All-zero pieces: nothing stored.</param>
/// <param name="ChunksInherited">Pieces equal to what the parent chain or fallback provides: left ZERO.</param>
/// <param name="BytesStored">Bytes written to new chunk files.</param>
/// <param name="Elapsed">Wall-clock time.</param>
public sealed record DiskImportResult(string IndexPath, string ImagePath, string? ParentPath, string? FallbackPath, long DiskSize, long ChunkCount,
    long ChunksNew, long ChunksPresent, long ChunksZero, long ChunksInherited, long BytesStored, TimeSpan Elapsed)
{
    /// <summary>Stored relative paths of the parent chain whose two readings name different files.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>
/// Ingests a raw image (or a byte range of one) into a chunk store eagerly and writes a shuru
/// index for it. Reads 64 KiB pieces, keeps all-zero pieces out of the store, writes each chunk
/// once and atomically, makes the store durable and only then publishes the index atomically:
/// a cancel or a crash leaves whole chunks (harmless, collectable) and no index.
/// </summary>
public static class DiskImporter
{
    private const int CS = ChunkHasher.ChunkSize;
    private const int PiecesPerRead = 64; // 4 MiB reads
    private static readonly int Parallelism = Math.Max(2, Environment.ProcessorCount);

    /// <summary>Runs the import. Throws <see cref="OperationCanceledException"/> on cancel (no index written).</summary>
    public static DiskImportResult Import(DiskImportOptions o, IProgress<MaintenanceProgress>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(o);
        var clock = Stopwatch.StartNew();
        string image = Path.GetFullPath(o.ImagePath);
        string indexPath = Path.GetFullPath(o.IndexPath);
        string? parentPath = o.ParentIndexPath is null ? null : Path.GetFullPath(o.ParentIndexPath);

        // The layers below the new index (its chain once written).
        IndexChain? parentChain = parentPath is null ? null : IndexChain.Load(parentPath, new IndexPathResolver(o.WorkingDirectory));
        // Pieces equal to what the parent chain shows through stay ZERO: over a chain missing a
        // parent, that is not what the checkpointed parent reads, and the new index would inherit the gap.
        parentChain?.RequireComplete($"cannot import over '{parentChain.Path}'", "import over an index whose chain is whole");
        string? fallback = o.FallbackPath is not null ? Path.GetFullPath(o.FallbackPath) : parentChain?.BaseImagePath;

        var forbidden = new List<string?> { image, fallback };
        if (parentChain is not null) forbidden.AddRange(parentChain.AllPaths);
        if (forbidden.Any(f => f is not null && string.Equals(Path.GetFullPath(f), indexPath, StringComparison.Ordinal)))
            throw new ShuruStoreException(ShuruErrorKind.CheckpointOverwritesChain,
                $"index '{indexPath}' would overwrite the image, the fallback image or an index of the parent chain", indexPath);
        if (!o.Overwrite && File.Exists(indexPath))
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, $"index '{indexPath}' already exists (allow overwriting to replace it)", indexPath);

        using var src = OpenRead(image, ShuruErrorKind.ImageNotFound, "image");
        long imageLength = RandomAccess.GetLength(src);
        if (o.Offset < 0 || o.Offset > imageLength)
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, $"offset {o.Offset} is outside the image ({imageLength} bytes)", image);
        long size = o.Length ?? imageLength - o.Offset;
        if (size <= 0 || size > imageLength - o.Offset)
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument,
                $"length {size} from offset {o.Offset} is outside the image ({imageLength} bytes) or empty", image);
        if (size > ChunkIndexFile.MaxDiskSize)
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, $"length {size} exceeds the largest disk {ChunkIndexFile.MaxDiskSize}", image);

        using var baseHandle = fallback is null ? null : OpenRead(fallback, ShuruErrorKind.BaseImageMissing, "fallback image");
        long baseLength = baseHandle is null ? 0 : RandomAccess.GetLength(baseHandle);
        var layers = new ChunkLayers(parentChain is null ? [] : parentChain.Parents.Select(p => p.Index).Prepend(parentChain.Top), baseLength);

        long count = ChunkIndexFile.ChunkCountFor(size);
        var entries = new ChunkHash?[count];
        long fresh = 0, present = 0, zero = 0, inherited = 0, stored = 0;
        var throttle = new ProgressThrottle(progress, $"Importing {Path.GetFileName(image)}");
        var buffer = new byte[PiecesPerRead * CS];
        int zeroChunkStored = 0;

        using var store = new FileChunkStore(o.CasPath, new FileChunkStoreOptions { Holder = new StoreHolder("import", Path.GetFileName(indexPath)) });
        // Pieces of a 4 MiB read are hashed and stored by several threads at once; nothing is
        // durable until the one store Sync below, which runs before the index is saved.
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = cancel };
        for (long first = 0; first < count; first += PiecesPerRead)
        {
            cancel.ThrowIfCancellationRequested();
            long start = first * CS;
            int want = (int)Math.Min(buffer.Length, size - start);
            ReadExactly(src, buffer.AsSpan(0, want), o.Offset + start, image);
            int pieces = (want + CS - 1) / CS;
            try { Parallel.For(0, pieces, parallel, k => Process(first + k, k * CS, Math.Min(CS, want - k * CS))); }
            catch (AggregateException e) when (e.InnerExceptions.Count > 0)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(
                    e.InnerExceptions.FirstOrDefault(x => x is ShuruStoreException) ?? e.InnerExceptions[0]).Throw();
            }
            throttle.Report("Storing chunks", Math.Min(size, start + want), size, "bytes");
        }

        void Process(long chunk, int at, int len)
        {
            var piece = buffer.AsSpan(at, len);
            bool allZero = ChunkHasher.IsAllZero(piece);

            // What would show through at this chunk if the entry stayed ZERO.
            var below = layers.Resolve(chunk);
            ChunkHash? parentHash = below.Kind == LayerKind.Index ? below.Hash : null;
            bool baseCovers = below.Kind == LayerKind.Base;

            if (allZero)
            {
                bool showsData = parentHash is { } phz ? !phz.IsZeroChunk : baseCovers && !BaseIsZero(baseHandle!, chunk, baseLength, len, fallback!);
                if (!showsData) { entries[chunk] = null; Interlocked.Increment(ref zero); return; }
                // Something non-zero below: record the well-known zero chunk (its file written once for shuru).
                if (Interlocked.Exchange(ref zeroChunkStored, 1) == 0) WriteChunk(store, ChunkHash.ZeroChunk, new byte[CS], ref stored);
                entries[chunk] = ChunkHash.ZeroChunk; Interlocked.Increment(ref zero);
                return;
            }
            var hash = ChunkHasher.Hash(piece);
            if (parentHash == hash || (parentHash is null && baseCovers && BaseEquals(baseHandle!, chunk, baseLength, buffer.AsSpan(at, len), fallback!)))
            {
                entries[chunk] = null; Interlocked.Increment(ref inherited);
                return;
            }
            if (WriteChunk(store, hash, buffer.AsSpan(at, len), ref stored)) Interlocked.Increment(ref fresh); else Interlocked.Increment(ref present);
            entries[chunk] = hash;
        }

        cancel.ThrowIfCancellationRequested();
        try { store.Sync(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new ShuruStoreException(Errno.IsNoSpace(e) ? ShuruErrorKind.NoSpace : ShuruErrorKind.IOError, $"cannot sync chunk store '{store.CasPath}': {e.Message}", store.CasPath, e); }
        var index = new ChunkIndexFile(size, parentPath, fallback, entries);
        index.Save(indexPath);
        throttle.Report("Done", size, size, "bytes", force: true);
        return new DiskImportResult(indexPath, image, parentPath, fallback, size, count, fresh, present, zero, inherited, stored, clock.Elapsed)
        {
            Warnings = parentChain?.Warnings ?? [],
        };
    }

    private static bool WriteChunk(FileChunkStore store, ChunkHash hash, ReadOnlySpan<byte> data, ref long stored)
    {
        try
        {
            if (!store.Write(hash, data)) return false;
            Interlocked.Add(ref stored, data.Length);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ShuruStoreException(Errno.IsNoSpace(e) ? ShuruErrorKind.NoSpace : ShuruErrorKind.IOError,
                $"cannot store chunk {hash} in '{store.CasPath}': {e.Message}", store.CasPath, e);
        }
    }

    private static int ReadBase(Microsoft.Win32.SafeHandles.SafeFileHandle h, long chunk, long baseLength, Span<byte> dest, string path)
    {
        long start = chunk * CS;
        int len = (int)Math.Min(CS, baseLength - start);
        ReadExactly(h, dest[..len], start, path);
        dest[len..].Clear(); // the server zero-fills past the end of the base
        return len;
    }

    private static bool BaseIsZero(Microsoft.Win32.SafeHandles.SafeFileHandle h, long chunk, long baseLength, int len, string path)
    {
        var scratch = System.Buffers.ArrayPool<byte>.Shared.Rent(CS);
        try
        {
            ReadBase(h, chunk, baseLength, scratch.AsSpan(0, CS), path);
            return ChunkHasher.IsAllZero(scratch.AsSpan(0, len));
        }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(scratch); }
    }

    private static bool BaseEquals(Microsoft.Win32.SafeHandles.SafeFileHandle h, long chunk, long baseLength, ReadOnlySpan<byte> piece, string path)
    {
        var scratch = System.Buffers.ArrayPool<byte>.Shared.Rent(CS);
        try
        {
            ReadBase(h, chunk, baseLength, scratch.AsSpan(0, CS), path);
            return scratch.AsSpan(0, piece.Length).SequenceEqual(piece);
        }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(scratch); }
    }

    internal static Microsoft.Win32.SafeHandles.SafeFileHandle OpenRead(string path, ShuruErrorKind missing, string what)
    {
        try { return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var kind = e is FileNotFoundException or DirectoryNotFoundException ? missing : ShuruErrorKind.IOError;
            throw new ShuruStoreException(kind, $"cannot open {what} '{path}': {e.Message}", path, e);
        }
    }

    internal static void ReadExactly(Microsoft.Win32.SafeHandles.SafeFileHandle h, Span<byte> dest, long offset, string path)
    {
        int total = 0;
        try
        {
            while (total < dest.Length)
            {
                int n = RandomAccess.Read(h, dest[total..], offset + total);
                if (n == 0) throw new ShuruStoreException(ShuruErrorKind.IOError, $"'{path}' ended at byte {offset + total} while reading it (did it shrink?)", path);
                total += n;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ShuruStoreException(ShuruErrorKind.IOError, $"cannot read '{path}' at byte {offset + total}: {e.Message}", path, e);
        }
    }
}
