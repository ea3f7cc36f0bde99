using System.Diagnostics;
using ShuruStore.Core.Storage;

using ShuruStore.Core.Interop;

namespace ShuruStore.Core.Maintenance;

/// <summary>What to keep and how to collect.</summary>
public sealed class GarbageCollectionOptions
{
    /// <summary>The chunk store.</summary>
    public required string CasPath { get; init; }
    /// <summary>Indexes whose chunks (with their chains) are kept.</summary>
    public IReadOnlyList<string> IndexPaths { get; init; } = [];
    /// <summary>Live-state files (<c>-StatePath</c>) whose chunks are kept, with their booted index's chain.</summary>
    public IReadOnlyList<string> StatePaths { get; init; } = [];
    /// <summary>Chunks referenced by running disks, asked for at the mark and again just before
    /// each deletion (e.g. <c>() =&gt; cowDisk.GetReferencedChunks()</c>).</summary>
    public IReadOnlyList<Func<IReadOnlyCollection<ChunkHash>>> LiveReferences { get; init; } = [];
    /// <summary>Chunk files written more recently than this are spared: a writer that did not
    /// register in the store may be flushing them right now, before any index names them.
    /// Registered writers (every ShuruStore server and import) are protected whatever it is.</summary>
    public TimeSpan GracePeriod { get; init; } = TimeSpan.FromHours(1);
    /// <summary>Test hook: runs after a batch was set aside and before the roots are asked again.</summary>
    internal Action<IReadOnlyList<ChunkHash>>? AfterSetAside { get; init; }
    /// <summary>The directory relative paths stored in the indexes are first resolved against
    /// (<see cref="IndexPathResolver"/>); null: the process current directory.</summary>
    public string? WorkingDirectory { get; init; }
}

/// <summary>What a collection found (and, unless planned only, removed).</summary>
/// <param name="CasPath">The store root.</param>
/// <param name="ChunksScanned">Chunk files in the store.</param>
/// <param name="ChunksReferenced">Chunk files kept because something references them.</param>
/// <param name="ChunksSpared">Unreferenced chunk files kept because they are younger than the grace period.</param>
/// <param name="ChunksUnused">Unreferenced chunk files old enough to go.</param>
/// <param name="BytesUnused">Their bytes.</param>
/// <param name="ChunksRemoved">Chunk files deleted.</param>
/// <param name="BytesRemoved">Their bytes.</param>
/// <param name="ChunksRescued">Candidates a running disk started to reference during the sweep: put back.</param>
/// <param name="Planned">True when nothing was removed (a plan, -WhatIf).</param>
/// <param name="Elapsed">Wall-clock time.</param>
public sealed record GarbageCollectionResult(string CasPath, long ChunksScanned, long ChunksReferenced, long ChunksSpared,
    long ChunksUnused, long BytesUnused, long ChunksRemoved, long BytesRemoved, long ChunksRescued, bool Planned, TimeSpan Elapsed)
{
    /// <summary>The store's registrations when the plan was made: live users, and ended ones
    /// (kept as roots while their state file exists).</summary>
    public IReadOnlyList<StoreRegistration> Registrations { get; init; } = [];

    /// <summary>Chains among the roots that stop at a parent index that does not exist: what the
    /// rest of each such chain names was kept.</summary>
    public IReadOnlyList<MissingParentLink> MissingParents { get; init; } = [];

    /// <summary>Stored relative paths of the roots' chains whose two readings name different files.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>A chunk the sweep would remove.</summary>
public readonly record struct UnusedChunk(ChunkHash Hash, long Length, DateTime LastWriteTimeUtc)
{
    /// <summary>Set when the chunk is a <c>.gc-*</c> file an interrupted collection left aside.</summary>
    internal string? AsidePath { get; init; }
}

/// <summary>The result of the mark phase: what the sweep would remove.</summary>
public sealed class GarbageCollectionPlan
{
    internal GarbageCollectionPlan(string cas, HashSet<ChunkHash> marked, List<UnusedChunk> unused, long scanned, long referenced, long spared, TimeSpan elapsed,
        RegistrationRoots roots, ChainMarker marker)
    {
        CasPath = cas; Marked = marked; Unused = unused; ChunksScanned = scanned; ChunksReferenced = referenced; ChunksSpared = spared; Elapsed = elapsed;
        Roots = roots; Registrations = roots.Registrations; Marker = marker;
        MissingParents = [.. marker.MissingParents];
        Warnings = [.. marker.Warnings];
    }

    /// <summary>The store root.</summary>
    public string CasPath { get; }
    internal HashSet<ChunkHash> Marked { get; }
    /// <summary>The chunks the sweep would remove.</summary>
    public IReadOnlyList<UnusedChunk> Unused { get; }
    /// <summary>Chunk files in the store.</summary>
    public long ChunksScanned { get; }
    /// <summary>Chunk files something references.</summary>
    public long ChunksReferenced { get; }
    /// <summary>Unreferenced but younger than the grace period.</summary>
    public long ChunksSpared { get; }
    /// <summary>Bytes the sweep would free.</summary>
    public long BytesUnused => Unused.Sum(u => u.Length);
    internal TimeSpan Elapsed { get; }
    /// <summary>The registrations' roots, asked again before each batch goes.</summary>
    internal RegistrationRoots Roots { get; }
    /// <summary>The store's registrations when the plan was made.</summary>
    public IReadOnlyList<StoreRegistration> Registrations { get; }
    /// <summary>Chains among the roots that stop at a parent index that does not exist; what
    /// the rest of each chain names is marked.</summary>
    public IReadOnlyList<MissingParentLink> MissingParents { get; }
    /// <summary>Stored relative paths of the roots' chains whose two readings name different files.</summary>
    public IReadOnlyList<string> Warnings { get; }
    /// <summary>Loads and marks chains, with the plan's path rule (used again by the sweep).</summary>
    internal ChainMarker Marker { get; }

    /// <summary>The plan as a result (nothing removed).</summary>
    public GarbageCollectionResult ToResult() =>
        new(CasPath, ChunksScanned, ChunksReferenced, ChunksSpared, Unused.Count, BytesUnused, 0, 0, 0, true, Elapsed)
        { Registrations = Registrations, MissingParents = MissingParents, Warnings = Warnings };
}

/// <summary>
/// Mark-and-sweep collection of a chunk store. Mark: every hash named by the given indexes and
/// their chains, by the given live-state files, by the running disks of this process, and by
/// every registration in the store (<see cref="StoreLease"/>: the booted chain, state file and
/// logged chunk names of every live server or import in any process; the state file of one that
/// ended). Sweep: every other chunk file older than the grace period goes; the zero chunk always
/// stays (shuru reads it).
/// <para>Races: each doomed chunk is first renamed aside (<c>.gc-&lt;hash&gt;-*</c>), then the
/// roots are asked again: this process's running disks, and every registration's log (a holder
/// logs a name before it publishes or relies on the chunk). A chunk referenced meanwhile, or
/// whose file changed after the plan was made (freshened by a writer reusing it), is renamed
/// back; the rest is deleted. A writer that stores such a chunk while it is aside finds the name
/// free and writes it again. An interrupted collection leaves only whole chunks and, at worst,
/// set-aside files that the next collection (or <c>Test-ShuruChunkStore -Repair</c>) puts back.</para>
/// </summary>
public static class GarbageCollector
{
    private const int Batch = 512;
    private static readonly TimeSpan RecheckDelay = TimeSpan.FromMilliseconds(20);

    /// <summary>The mark phase and the list of what would go. Touches nothing.</summary>
    public static GarbageCollectionPlan Plan(GarbageCollectionOptions o, IProgress<MaintenanceProgress>? progress = null, CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        string cas = Path.GetFullPath(o.CasPath);
        string chunksDir = Path.Combine(cas, "chunks");
        if (!Directory.Exists(cas))
            throw new ShuruStoreException(ShuruErrorKind.StoreInvalid, $"chunk store '{cas}' does not exist", cas);
        var throttle = new ProgressThrottle(progress, $"Collecting unused chunks in {cas}");

        // Mark. Any index that cannot be read aborts the collection: never sweep on a partial mark.
        // A chain that stops at a missing parent is no partial mark: the parent's chunks are
        // named by nothing that exists, and what the rest of the chain names is kept.
        var marked = new HashSet<ChunkHash> { ChunkHash.ZeroChunk };
        var marker = new ChainMarker(new IndexPathResolver(o.WorkingDirectory));
        int roots = o.IndexPaths.Count + o.StatePaths.Count + o.LiveReferences.Count, done = 0;
        foreach (string ip in o.IndexPaths)
        {
            cancel.ThrowIfCancellationRequested();
            marker.Mark(marked, ip);
            throttle.Report("Marking", ++done, roots, "roots");
        }
        foreach (string sp in o.StatePaths)
        {
            cancel.ThrowIfCancellationRequested();
            MarkState(marked, sp, marker);
            throttle.Report("Marking", ++done, roots, "roots");
        }
        foreach (var live in o.LiveReferences)
        {
            marked.UnionWith(live());
            throttle.Report("Marking", ++done, roots, "roots");
        }
        var registrations = new RegistrationRoots(cas);
        registrations.AddNew(marked, p => marker.Mark(marked, p), p => MarkState(marked, p, marker));

        // Candidates.
        DateTime youngAfter = DateTime.UtcNow - o.GracePeriod;
        long scanned = 0, referenced = 0, spared = 0;
        var unused = new List<UnusedChunk>();
        if (Directory.Exists(chunksDir))
        {
            foreach (var fi in new DirectoryInfo(chunksDir).EnumerateFiles())
            {
                if ((scanned & 1023) == 0) cancel.ThrowIfCancellationRequested();
                var kind = ChunkFileNames.Classify(fi.Name, out var h);
                if (kind == ChunkFileKind.Quarantined)
                {
                    // Left aside by an interrupted collection: unused ones go now, used ones are put back by the sweep.
                    if (!marked.Contains(h) && fi.LastWriteTimeUtc <= youngAfter)
                        unused.Add(new UnusedChunk(h, fi.Length, fi.LastWriteTimeUtc) { AsidePath = fi.FullName });
                    continue;
                }
                if (kind != ChunkFileKind.Chunk) continue;
                scanned++;
                if (marked.Contains(h)) referenced++;
                else if (fi.LastWriteTimeUtc > youngAfter) spared++;
                else unused.Add(new UnusedChunk(h, fi.Length, fi.LastWriteTimeUtc));
                throttle.Report("Scanning the store", scanned, 0, "chunks");
            }
        }
        return new GarbageCollectionPlan(cas, marked, unused, scanned, referenced, spared, clock.Elapsed, registrations, marker);
    }

    /// <summary>The sweep of a plan: removes its unused chunks, re-asking the running disks
    /// (<see cref="GarbageCollectionOptions.LiveReferences"/>) before each batch goes.
    /// Cancelling stops between batches; chunks of the batch at hand are put back.</summary>
    public static GarbageCollectionResult Sweep(GarbageCollectionPlan plan, GarbageCollectionOptions o, Action<UnusedChunk>? onRemoved = null,
        IProgress<MaintenanceProgress>? progress = null, CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        string chunksDir = Path.Combine(plan.CasPath, "chunks");
        var throttle = new ProgressThrottle(progress, $"Removing unused chunks from {plan.CasPath}");
        RestoreQuarantined(chunksDir, plan.Unused.Where(u => u.AsidePath is not null).Select(u => u.AsidePath!).ToHashSet(StringComparer.Ordinal));
        long removed = 0, bytes = 0, rescued = 0, processed = 0;
        for (int first = 0; first < plan.Unused.Count; first += Batch)
        {
            cancel.ThrowIfCancellationRequested();
            var batch = plan.Unused.Skip(first).Take(Batch).ToList();
            var aside = new List<(UnusedChunk Chunk, string Aside)>(batch.Count);
            try
            {
                foreach (var u in batch)
                {
                    if (u.AsidePath is not null)
                    {
                        if (File.Exists(u.AsidePath)) aside.Add((u, u.AsidePath));
                        continue;
                    }
                    string name = Path.Combine(chunksDir, u.Hash.ToString());
                    string q = Path.Combine(chunksDir, ChunkFileNames.QuarantineName(u.Hash));
                    try { File.Move(name, q, overwrite: false); aside.Add((u, q)); }
                    catch (FileNotFoundException) { /* gone already (another collection) */ }
                }
                o.AfterSetAside?.Invoke(aside.Select(a => a.Chunk.Hash).ToList());
                // Ask the roots again now that the names are free: anything referenced goes back;
                // anything stored from now on is written afresh.
                var live = new HashSet<ChunkHash>();
                plan.Roots.AddNew(live, p => plan.Marker.Mark(live, p), p => MarkState(live, p, plan.Marker));
                foreach (var f in o.LiveReferences) live.UnionWith(f());
                if (o.LiveReferences.Count > 0 && aside.Count > 0)
                {
                    // A lazy ingestion finds its chunk present and records it a moment later, outside
                    // the lock the first look waits on: look once more after that moment has passed.
                    Thread.Sleep(RecheckDelay);
                    foreach (var f in o.LiveReferences) live.UnionWith(f());
                }
                foreach (var (u, q) in aside)
                {
                    string name = Path.Combine(chunksDir, u.Hash.ToString());
                    if (live.Contains(u.Hash) || Changed(q, u.LastWriteTimeUtc)) { Restore(q, name); rescued++; continue; }
                    File.Delete(q);
                    removed++; bytes += u.Length;
                    onRemoved?.Invoke(u);
                }
                aside.Clear();
            }
            finally
            {
                foreach (var (u, q) in aside) Restore(q, Path.Combine(chunksDir, u.Hash.ToString()));
            }
            processed += batch.Count;
            throttle.Report("Removing", processed, plan.Unused.Count, "chunks");
        }
        try { FileSync.FsyncDirectory(chunksDir); } catch (IOException) { }
        throttle.Report("Done", plan.Unused.Count, plan.Unused.Count, "chunks", force: true);
        return new GarbageCollectionResult(plan.CasPath, plan.ChunksScanned, plan.ChunksReferenced, plan.ChunksSpared,
            plan.Unused.Count, plan.BytesUnused, removed, bytes, rescued, false, plan.Elapsed + clock.Elapsed)
        { Registrations = plan.Registrations, MissingParents = plan.MissingParents, Warnings = plan.Warnings };
    }

    /// <summary>Whether a set-aside file was written (or freshened by a writer relying on it)
    /// since the plan saw it: its modification time moved.</summary>
    private static bool Changed(string path, DateTime seenUtc)
    {
        try { return File.GetLastWriteTimeUtc(path) != seenUtc; }
        catch (IOException) { return false; }
    }

    /// <summary>Plan and sweep in one go.</summary>
    public static GarbageCollectionResult Collect(GarbageCollectionOptions o, IProgress<MaintenanceProgress>? progress = null, CancellationToken cancel = default) =>
        Sweep(Plan(o, progress, cancel), o, null, progress, cancel);

    /// <summary>Puts a set-aside chunk back under its name; if the name was written again
    /// meanwhile (same content by definition), the set-aside copy is dropped.</summary>
    internal static bool Restore(string aside, string name)
    {
        try { File.Move(aside, name, overwrite: false); return true; }
        catch (IOException) when (File.Exists(name)) { File.Delete(aside); return true; }
        catch (FileNotFoundException) { return false; }
    }

    /// <summary>Puts back what an interrupted collection left aside.</summary>
    private static void RestoreQuarantined(string chunksDir, HashSet<string> except)
    {
        if (!Directory.Exists(chunksDir)) return;
        foreach (var f in Directory.EnumerateFiles(chunksDir, ChunkFileNames.QuarantinePrefix + "*"))
            if (!except.Contains(f) && ChunkFileNames.Classify(Path.GetFileName(f), out var h) == ChunkFileKind.Quarantined)
                Restore(f, Path.Combine(chunksDir, h.ToString()));
    }

    private static void MarkState(HashSet<ChunkHash> marked, string statePath, ChainMarker marker)
    {
        string full = Path.GetFullPath(statePath);
        if (!File.Exists(full)) throw new ShuruStoreException(ShuruErrorKind.StateInvalid, $"state file '{full}' does not exist", full);
        StateJournal.Header header;
        List<(long Chunk, ChunkHash? Hash)> records;
        // Read without the file's lock: the disk it belongs to may be running (in any process).
        try { (header, records) = StateJournal.ReadUnlocked(full, ChunkIndexFile.ChunkCountFor(ChunkIndexFile.MaxDiskSize)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new ShuruStoreException(ShuruErrorKind.StateInvalid, $"cannot read state file '{full}': {e.Message}", full, e); }
        foreach (var (_, h) in records) if (h is { } hh) marked.Add(hh);
        if (!string.IsNullOrEmpty(header.BootIndexPath) && File.Exists(header.BootIndexPath)) marker.Mark(marked, header.BootIndexPath);
    }
}
