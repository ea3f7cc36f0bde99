using System.Diagnostics;
using ShuruStore.Core.Storage;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Maintenance;

/// <summary>What to verify and whether to repair.</summary>
public sealed class StoreVerifyOptions
{
    /// <summary>The chunk store.</summary>
    public required string CasPath { get; init; }
    /// <summary>Verify only the chunks these indexes (and their chains) name, and report the ones
    /// missing. Empty: verify every chunk file of the store.</summary>
    public IReadOnlyList<string> IndexPaths { get; init; } = [];
    /// <summary>Remove corrupt chunks and temporary files older than <see cref="GracePeriod"/>;
    /// put chunks set aside by an interrupted collection back.</summary>
    public bool Repair { get; init; }
    /// <summary>Temporary files younger than this may belong to a write in progress: reported,
    /// never removed.</summary>
    public TimeSpan GracePeriod { get; init; } = TimeSpan.FromHours(1);
    /// <summary>Asked before each repair (the cmdlet's ShouldProcess); null = yes.</summary>
    public Func<StoreProblem, bool>? ConfirmRepair { get; init; }
    /// <summary>The directory relative paths stored in the indexes are first resolved against
    /// (<see cref="IndexPathResolver"/>); null: the process current directory.</summary>
    public string? WorkingDirectory { get; init; }
}

/// <summary>Totals of a verification.</summary>
public sealed record StoreVerifyResult(string CasPath, long ChunksChecked, long BytesChecked, long Missing, long Corrupt,
    long TempFiles, long QuarantinedChunks, long UnknownFiles, long Repaired, TimeSpan Elapsed)
{
    /// <summary>No missing or corrupt chunk and no given index whose chain stops at a missing
    /// parent (leftover files do not make a store unhealthy).</summary>
    public bool IsHealthy => Missing == 0 && Corrupt == 0 && MissingParents == 0;

    /// <summary>Registrations whose process has ended.</summary>
    public long EndedRegistrations { get; init; }

    /// <summary>Links of the given indexes' chains that name a parent index that does not exist.</summary>
    public long MissingParents { get; init; }

    /// <summary>Stored relative paths of the given chains whose two readings name different files.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>
/// Checks a chunk store: every chunk (or every chunk the given indexes reach) is present and
/// hashes to its name; leftovers of interrupted writes and collections are listed. Read-only
/// unless <see cref="StoreVerifyOptions.Repair"/>: then corrupt chunks are deleted (a chunk
/// that lies about its content is worse than none: readers fail with ChunkMissing instead of
/// ChunkCorrupt, and a re-import or lazy ingestion can store it again), stale temp files are
/// deleted and quarantined chunks are renamed back.
/// </summary>
public static class StoreVerifier
{
    /// <summary>Verifies; each problem is passed to <paramref name="onProblem"/> as it is found
    /// (on the calling thread).</summary>
    public static StoreVerifyResult Verify(StoreVerifyOptions o, Action<StoreProblem>? onProblem = null,
        IProgress<MaintenanceProgress>? progress = null, CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        string cas = Path.GetFullPath(o.CasPath);
        string chunksDir = Path.Combine(cas, "chunks");
        if (!Directory.Exists(cas))
            throw new ShuruStoreException(ShuruErrorKind.StoreInvalid, $"chunk store '{cas}' does not exist", cas);
        var throttle = new ProgressThrottle(progress, $"Verifying {cas}");
        long checkedCount = 0, bytes = 0, missing = 0, corrupt = 0, temps = 0, quarantined = 0, unknown = 0, repaired = 0, ended = 0, brokenLinks = 0;
        var warnings = new List<string>();
        var buffer = new byte[ChunkHasher.ChunkSize];
        DateTime staleBefore = DateTime.UtcNow - o.GracePeriod;

        // The chunks to check: reachable from the indexes, or every chunk file.
        Dictionary<ChunkHash, string>? reachable = null;
        if (o.IndexPaths.Count > 0)
        {
            reachable = [];
            var paths = new IndexPathResolver(o.WorkingDirectory);
            var reported = new HashSet<MissingParentLink>();
            foreach (string ip in o.IndexPaths)
            {
                cancel.ThrowIfCancellationRequested();
                var chain = IndexChain.Load(ip, paths);
                AddEntries(reachable, chain.Path, chain.Top);
                foreach (var (path, p) in chain.Parents) AddEntries(reachable, path, p);
                foreach (string w in chain.Warnings) if (!warnings.Contains(w)) warnings.Add(w);
                // The chunks of what is left are checked; what only the missing parent named is unknowable.
                if (chain.MissingParent is { } link && reported.Add(link))
                {
                    brokenLinks++;
                    onProblem?.Invoke(new StoreProblem(StoreProblemKind.ParentIndexMissing, null, link.MissingPath, 0, link.IndexPath,
                        $"{link.Describe()}: {MissingParentLink.Consequence(chain.BaseImagePath)}", false));
                }
            }
        }

        // Leftovers and (without indexes) the chunk list, in one directory pass.
        var files = new List<(ChunkHash Hash, string Path)>();
        if (Directory.Exists(chunksDir))
        {
            foreach (var fi in new DirectoryInfo(chunksDir).EnumerateFiles())
            {
                cancel.ThrowIfCancellationRequested();
                switch (ChunkFileNames.Classify(fi.Name, out var h))
                {
                    case ChunkFileKind.Chunk:
                        if (reachable is null) files.Add((h, fi.FullName));
                        break;
                    case ChunkFileKind.Temporary:
                    {
                        temps++;
                        bool stale = fi.LastWriteTimeUtc < staleBefore;
                        var p = new StoreProblem(StoreProblemKind.TempFile, null, fi.FullName, fi.Length, null,
                            stale ? $"temporary file of an interrupted chunk write, last written {fi.LastWriteTimeUtc:u}"
                                  : $"temporary file written {fi.LastWriteTimeUtc:u}, within the grace period (a write may be in progress)", false);
                        if (o.Repair && stale && Confirm(o, p) && TryDelete(fi.FullName)) { p = p with { Repaired = true }; repaired++; }
                        onProblem?.Invoke(p);
                        break;
                    }
                    case ChunkFileKind.Quarantined:
                    {
                        quarantined++;
                        var p = new StoreProblem(StoreProblemKind.QuarantinedChunk, h, fi.FullName, fi.Length, null,
                            $"chunk {h} set aside by a garbage collection that did not finish", false);
                        if (o.Repair && Confirm(o, p) && GarbageCollector.Restore(fi.FullName, Path.Combine(chunksDir, h.ToString())))
                        { p = p with { Repaired = true }; repaired++; }
                        onProblem?.Invoke(p);
                        break;
                    }
                    default:
                        unknown++;
                        onProblem?.Invoke(new StoreProblem(StoreProblemKind.UnknownFile, null, fi.FullName, fi.Length, null,
                            "not a chunk (name is not 64 lowercase hex) nor a ShuruStore temporary file; left alone", false));
                        break;
                }
            }
        }
        if (reachable is not null) files.AddRange(reachable.Keys.Select(h => (h, Path.Combine(chunksDir, h.ToString()))));

        foreach (var r in StoreRegistrations.Read(cas))
        {
            if (r.IsAlive) continue;
            ended++;
            var p = new StoreProblem(StoreProblemKind.EndedRegistration, null, r.LeasePath, 0, r.StatePath, r.IsRoot
                ? $"{r.Kind} {r.Name} (process {r.ProcessId} on {r.HostName}, since {r.Since:u}) has ended; its state file '{r.StatePath}' keeps its chunks"
                : $"{r.Kind} {r.Name} (process {r.ProcessId} on {r.HostName}, since {r.Since:u}) has ended and keeps nothing", false);
            // Only a registration that keeps nothing is repaired: a resumable disk's state file is the user's to remove.
            if (o.Repair && !r.IsRoot && Confirm(o, p) && StoreRegistrations.RemoveEnded(r)) { p = p with { Repaired = true }; repaired++; }
            onProblem?.Invoke(p);
        }

        long total = files.Count;
        foreach (var (hash, path) in files)
        {
            if ((checkedCount & 63) == 0) cancel.ThrowIfCancellationRequested();
            throttle.Report("Re-hashing chunks", checkedCount, total, "chunks");
            string? referencedBy = reachable?[hash];
            string? why;
            long length;
            try { why = ChunkFileNames.CheckContent(path, hash, buffer, out length); }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                checkedCount++;
                if (reachable is null) continue; // removed meanwhile (a collection): not a problem
                missing++;
                onProblem?.Invoke(new StoreProblem(StoreProblemKind.Missing, hash, path, 0, referencedBy,
                    $"chunk {hash} is named by '{referencedBy}' but is not in the store", false));
                continue;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ShuruStoreException(ShuruErrorKind.IOError, $"cannot read chunk file '{path}': {e.Message}", path, e);
            }
            checkedCount++;
            bytes += length;
            if (why is null) continue;
            corrupt++;
            var p = new StoreProblem(StoreProblemKind.Corrupt, hash, path, length, referencedBy, $"chunk {hash} is corrupt: {why}", false);
            if (o.Repair && Confirm(o, p) && TryDelete(path)) { p = p with { Repaired = true }; repaired++; }
            onProblem?.Invoke(p);
        }
        if (repaired > 0) { try { FileSync.FsyncDirectory(chunksDir); } catch (IOException) { } }
        throttle.Report("Done", total, total, "chunks", force: true);
        return new StoreVerifyResult(cas, checkedCount, bytes, missing, corrupt, temps, quarantined, unknown, repaired, clock.Elapsed) { EndedRegistrations = ended, MissingParents = brokenLinks, Warnings = warnings };
    }

    private static bool Confirm(StoreVerifyOptions o, StoreProblem p) => o.ConfirmRepair?.Invoke(p) ?? true;

    private static void AddEntries(Dictionary<ChunkHash, string> set, string path, ChunkIndexFile index)
    {
        foreach (var e in index.Entries) if (e is { } h) set.TryAdd(h, path);
    }

    private static bool TryDelete(string path)
    {
        try { File.Delete(path); return true; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }
}
