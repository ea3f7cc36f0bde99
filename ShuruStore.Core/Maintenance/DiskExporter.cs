using System.Diagnostics;
using ShuruStore.Core.Storage;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Maintenance;

/// <summary>What an export wrote.</summary>
/// <param name="Destination">The raw image written.</param>
/// <param name="IndexPath">The index exported (top of its chain).</param>
/// <param name="DiskSize">Size of the image.</param>
/// <param name="ChunkCount">Chunks in the index.</param>
/// <param name="ChunksFromStore">Chunks read (verified) from the chunk store.</param>
/// <param name="ChunksFromBase">Chunks read from the base image.</param>
/// <param name="ChunksZero">Chunks that read as zeros: left as holes.</param>
/// <param name="BytesWritten">Bytes of data written (the rest of the file is holes).</param>
/// <param name="Elapsed">Wall-clock time.</param>
public sealed record DiskExportResult(string Destination, string IndexPath, long DiskSize, long ChunkCount,
    long ChunksFromStore, long ChunksFromBase, long ChunksZero, long BytesWritten, TimeSpan Elapsed)
{
    /// <summary>Where the exported chain stopped at a missing parent (exported with
    /// <see cref="DiskExportOptions.AllowMissingParent"/>); null when it was whole.</summary>
    public MissingParentLink? MissingParent { get; init; }
    /// <summary>Stored relative paths of the chain whose two readings name different files.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>What to export and how.</summary>
public sealed class DiskExportOptions
{
    /// <summary>The index to export (top of its chain).</summary>
    public required string IndexPath { get; init; }
    /// <summary>The chunk store its chunks are in.</summary>
    public required string CasPath { get; init; }
    /// <summary>The raw image to write.</summary>
    public required string Destination { get; init; }
    /// <summary>Replace an existing destination (never an index of the chain or the base image).</summary>
    public bool Overwrite { get; init; }
    /// <summary>Export an index whose chain stops at a missing parent, as the rest of the chain
    /// reads (as shuru would serve it); otherwise that is <see cref="ShuruErrorKind.ParentIndexMissing"/>.</summary>
    public bool AllowMissingParent { get; init; }
    /// <summary>The directory relative paths stored in the chain are first resolved against
    /// (<see cref="IndexPathResolver"/>); null: the process current directory.</summary>
    public string? WorkingDirectory { get; init; }
    /// <summary>Where the chunks are read from instead of <see cref="CasPath"/> opened read-only:
    /// a store in front of it (a published checkpoint's fetching cache, say). Not disposed here.</summary>
    public IChunkStore? ChunkStore { get; init; }
}

/// <summary>
/// Materialises an index with its whole chain into a raw image: exactly the bytes a server
/// started on that index serves. Each chunk resolves as the server reads it (index, parents
/// nearest first, base image, zeros); stored chunks are verified against their names; ranges
/// that read as zeros are left as holes, so the image is sparse. The image is built in a temp
/// file next to the destination and renamed over it at the end: a cancel or failure leaves no
/// partial image behind. A chain that stops at a missing parent is refused unless the caller
/// accepts it: the image would not be the disk that was checkpointed.
/// </summary>
public static class DiskExporter
{
    private const int CS = ChunkHasher.ChunkSize;
    private const int BatchChunks = 64;

    /// <summary>Exports <paramref name="indexPath"/> to <paramref name="destination"/>.</summary>
    public static DiskExportResult Export(string indexPath, string casPath, string destination, bool overwrite = false,
        IProgress<MaintenanceProgress>? progress = null, CancellationToken cancel = default) =>
        Export(new DiskExportOptions { IndexPath = indexPath, CasPath = casPath, Destination = destination, Overwrite = overwrite }, progress, cancel);

    /// <summary>Exports <see cref="DiskExportOptions.IndexPath"/> to <see cref="DiskExportOptions.Destination"/>.</summary>
    public static DiskExportResult Export(DiskExportOptions o, IProgress<MaintenanceProgress>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(o);
        var clock = Stopwatch.StartNew();
        string casPath = o.CasPath;
        bool overwrite = o.Overwrite;
        var view = IndexChainView.Open(o.IndexPath, new IndexPathResolver(o.WorkingDirectory));
        if (!o.AllowMissingParent)
            view.Chain.RequireComplete($"cannot export '{view.Chain.Path}'", "allow a missing parent (AllowMissingParent) to export what the rest of the chain holds");
        string dest = Path.GetFullPath(o.Destination);
        var forbidden = view.Chain.AllPaths.Append(view.BaseImagePath);
        if (forbidden.Any(f => f is not null && string.Equals(Path.GetFullPath(f), dest, StringComparison.Ordinal)))
            throw new ShuruStoreException(ShuruErrorKind.CheckpointOverwritesChain,
                $"destination '{dest}' would overwrite an index of the chain or the base image", dest);
        if (!overwrite && File.Exists(dest))
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, $"destination '{dest}' already exists (allow overwriting to replace it)", dest);
        // A missing base never reads as zeros (a shuru defect): refuse as the server does.
        if (view.BaseImagePath is not null && !view.BaseImageExists)
            throw new ShuruStoreException(ShuruErrorKind.BaseImageMissing, $"base image '{view.BaseImagePath}' of '{view.Chain.Path}' does not exist", view.BaseImagePath);

        using var ownStore = o.ChunkStore is null ? new FileChunkStore(casPath, readOnly: true) : null;
        IChunkStore store = o.ChunkStore ?? ownStore!;
        using var baseHandle = view.BaseImagePath is null ? null : DiskImporter.OpenRead(view.BaseImagePath, ShuruErrorKind.BaseImageMissing, "base image");
        long baseLength = baseHandle is null ? 0 : RandomAccess.GetLength(baseHandle);

        string dir = Path.GetDirectoryName(dest)!;
        string tmp = Path.Combine(dir, "." + Path.GetFileName(dest) + ".tmp-" + Guid.NewGuid().ToString("N")[..12]);
        long fromStore = 0, fromBase = 0, zeros = 0, written = 0;
        var throttle = new ProgressThrottle(progress, $"Exporting {Path.GetFileName(view.Chain.Path)}");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.None))
            {
                fs.SetLength(view.DiskSize); // all holes until written
                var h = fs.SafeFileHandle;
                // Chunks of a batch are read, verified and written by several threads (positional writes).
                var parallel = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(2, Environment.ProcessorCount), CancellationToken = cancel };
                for (long first = 0; first < view.ChunkCount; first += BatchChunks)
                {
                    cancel.ThrowIfCancellationRequested();
                    throttle.Report("Writing image", first * CS, view.DiskSize, "bytes");
                    var batch = view.Chunks(first, BatchChunks).ToArray();
                    try { Parallel.ForEach(batch, parallel, CopyChunk); }
                    catch (AggregateException e) when (e.InnerExceptions.Count > 0)
                    {
                        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(
                            e.InnerExceptions.FirstOrDefault(x => x is ShuruStoreException) ?? e.InnerExceptions[0]).Throw();
                    }
                }

                void CopyChunk(ChunkLocation loc)
                {
                    if (loc.ReadsAsZeros) { Interlocked.Increment(ref zeros); return; }
                    var buf = System.Buffers.ArrayPool<byte>.Shared.Rent(CS);
                    try
                    {
                        if (loc.Hash is { } hash)
                        {
                            store.Read(hash, buf.AsSpan(0, CS)); // verified; a missing chunk is ChunkMissing, never zeros
                            Interlocked.Increment(ref fromStore);
                        }
                        else
                        {
                            int len = (int)Math.Min(CS, baseLength - loc.Offset);
                            DiskImporter.ReadExactly(baseHandle!, buf.AsSpan(0, len), loc.Offset, view.BaseImagePath!);
                            buf.AsSpan(len, CS - len).Clear();
                            Interlocked.Increment(ref fromBase);
                        }
                        var data = buf.AsSpan(0, loc.Length);
                        if (ChunkHasher.IsAllZero(data)) return; // stays a hole
                        RandomAccess.Write(h, data, loc.Offset);
                        Interlocked.Add(ref written, data.Length);
                    }
                    finally { System.Buffers.ArrayPool<byte>.Shared.Return(buf); }
                }
                cancel.ThrowIfCancellationRequested();
                FileSync.FlushToDisk(fs);
            }
            File.Move(tmp, dest, overwrite);
        }
        catch (Exception e)
        {
            try { File.Delete(tmp); } catch { /* best effort */ }
            if (e is IOException io and not FileNotFoundException and not DirectoryNotFoundException && e is not ShuruStoreException)
                throw new ShuruStoreException(Errno.IsNoSpace(io) ? ShuruErrorKind.NoSpace : ShuruErrorKind.IOError, $"cannot write '{dest}': {io.Message}", dest, io);
            throw;
        }
        try { FileSync.FsyncDirectory(dir); } catch (IOException) { /* the image is complete; only its directory entry may lag */ }
        throttle.Report("Done", view.DiskSize, view.DiskSize, "bytes", force: true);
        return new DiskExportResult(dest, view.Chain.Path, view.DiskSize, view.ChunkCount, fromStore, fromBase, zeros, written, clock.Elapsed)
        {
            MissingParent = view.Chain.MissingParent,
            Warnings = view.Chain.Warnings,
        };
    }
}
