using System.Diagnostics;
using ShuruStore.Core.Maintenance;

namespace ShuruStore.Core.Remote;

/// <summary>How a remote store is collected.</summary>
public sealed record RemoteCollectionOptions
{
    /// <summary>Objects written more recently than this are spared: an upload may be about to
    /// reference them. Measured against the store's own modification times.</summary>
    public TimeSpan GracePeriod { get; init; } = TimeSpan.FromHours(1);

    /// <summary>An upload marker older than this is taken for an abandoned upload: it protects
    /// nothing any more and is removed.</summary>
    public TimeSpan StaleUploadAge { get; init; } = TimeSpan.FromDays(1);
}

/// <summary>An object a collection would remove, and why.</summary>
/// <param name="Key">Its key under the store's root.</param>
/// <param name="Length">Its length.</param>
/// <param name="LastModified">When it was written.</param>
/// <param name="Reason">"unreferenced pack", "map without index" or "abandoned upload marker".</param>
public sealed record RemoteGarbage(string Key, long Length, DateTimeOffset? LastModified, string Reason);

/// <summary>The mark of a remote collection: what the sweep would remove.</summary>
public sealed class RemoteCollectionPlan
{
    internal RemoteCollectionPlan(S3Location root, int indexes, long packs, long referenced, long spared, long protectedByUploads,
        IReadOnlyList<RemoteGarbage> unused, HashSet<string> knownIndexes, TimeSpan elapsed)
    {
        Root = root; Indexes = indexes; PacksScanned = packs; PacksReferenced = referenced; PacksSpared = spared;
        PacksProtectedByUploads = protectedByUploads; Unused = unused; KnownIndexes = knownIndexes; Elapsed = elapsed;
    }

    /// <summary>The remote store.</summary>
    public S3Location Root { get; }
    /// <summary>Published indexes (the roots).</summary>
    public int Indexes { get; }
    /// <summary>Packs in the store.</summary>
    public long PacksScanned { get; }
    /// <summary>Packs a published index's map points into.</summary>
    public long PacksReferenced { get; }
    /// <summary>Unreferenced packs younger than the grace period.</summary>
    public long PacksSpared { get; }
    /// <summary>Unreferenced packs an upload in progress will reference.</summary>
    public long PacksProtectedByUploads { get; }
    /// <summary>What the sweep would remove.</summary>
    public IReadOnlyList<RemoteGarbage> Unused { get; }
    /// <summary>Bytes the sweep would free.</summary>
    public long BytesUnused => Unused.Sum(u => u.Length);
    internal HashSet<string> KnownIndexes { get; }
    internal TimeSpan Elapsed { get; }
}

/// <summary>What a remote collection found and removed.</summary>
public sealed record RemoteCollectionResult(string Root, int Indexes, long PacksScanned, long PacksReferenced, long PacksSpared,
    long PacksProtectedByUploads, long ObjectsUnused, long BytesUnused, long ObjectsRemoved, long BytesRemoved, long ObjectsRescued,
    bool Planned, TimeSpan Elapsed);

/// <summary>
/// Garbage collection of a remote store, with the local collector's safety rules:
/// <list type="bullet">
/// <item>Roots are the published indexes: every pack a published index's map points into is
/// kept. An index whose map cannot be read aborts the collection (never sweep on a partial mark).</item>
/// <item>Nothing younger than the grace period is removed (the store's modification time).</item>
/// <item>An upload in progress is never collected: the packs and maps its marker names are kept
/// whatever their age, until the marker is older than the stale-upload age.</item>
/// <item>Just before removing, the markers and indexes are listed again: packs named by a marker
/// or index that appeared since the mark are put back (rescued). A publisher writes its marker
/// before it relies on an existing pack and checks the packs it relied on are still there before
/// writing its index, so the only gap left is a publish that relies on an old unreferenced pack
/// and completes entirely inside one sweep's final listing and deletion.</item>
/// <item>Objects that are not the tier's (unknown keys) are never touched. Packs with some dead
/// chunks are kept whole: a pack is removed only when no index needs any of it.</item>
/// </list>
/// </summary>
public static class RemoteCollector
{
    /// <summary>The mark: lists the store, reads every index's map and every young marker.</summary>
    public static RemoteCollectionPlan Plan(IObjectStore remote, S3Location root, RemoteCollectionOptions? options = null,
        IProgress<MaintenanceProgress>? progress = null, CancellationToken cancel = default)
    {
        options ??= new RemoteCollectionOptions();
        var clock = Stopwatch.StartNew();
        var throttle = new ProgressThrottle(progress, $"Collecting unused objects in {root}");
        // The work runs on pool threads; progress is reported here, on the calling thread, as the
        // cmdlets need (Write-Progress only works on the pipeline thread).
        var state = new PolledProgress();
        return PolledProgress.RunReporting(Task.Run(PlanAsync, cancel), state, throttle);

        async Task<RemoteCollectionPlan> PlanAsync()
        {
            var now = DateTimeOffset.UtcNow;
            var (protectedPacks, protectedNames, staleMarkers) = await ReadMarkersAsync(remote, root, options, now, cancel).ConfigureAwait(false);
            var indexes = await ListAsync(remote, RemoteLayout.IndexesFolder, cancel).ConfigureAwait(false);
            var indexNames = indexes.Select(o => RemoteLayout.NameOfKey(o.Key, RemoteLayout.IndexesFolder)).OfType<string>().ToHashSet(StringComparer.Ordinal);
            var referenced = new HashSet<PackId>();
            state.Start("Marking", indexNames.Count, "indexes");
            await Parallel.ForEachAsync(indexNames, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancel }, async (name, ct) =>
            {
                var map = await ReadMapAsync(remote, root, name, ct).ConfigureAwait(false);
                lock (referenced) referenced.UnionWith(map.Packs);
                state.Advance();
            }).ConfigureAwait(false);

            var unused = new List<RemoteGarbage>();
            long scanned = 0, kept = 0, spared = 0, byUploads = 0;
            state.Start("Scanning packs", 0, "packs");
            foreach (var o in await ListAsync(remote, RemoteLayout.PacksFolder, cancel).ConfigureAwait(false))
            {
                if (RemoteLayout.PackOfKey(o.Key) is not { } id) continue; // not ours: never touched
                scanned++;
                if (referenced.Contains(id)) kept++;
                else if (protectedPacks.Contains(id)) byUploads++;
                else if (IsYoung(o, now, options.GracePeriod)) spared++;
                else unused.Add(new RemoteGarbage(o.Key, o.Length, o.LastModified, "unreferenced pack"));
                state.Advance();
            }
            foreach (var o in await ListAsync(remote, RemoteLayout.MapsFolder, cancel).ConfigureAwait(false))
            {
                if (RemoteLayout.NameOfKey(o.Key, RemoteLayout.MapsFolder) is not { } name) continue;
                if (indexNames.Contains(name) || protectedNames.Contains(name) || IsYoung(o, now, options.GracePeriod)) continue;
                unused.Add(new RemoteGarbage(o.Key, o.Length, o.LastModified, "map without index"));
            }
            unused.AddRange(staleMarkers.Select(m => new RemoteGarbage(m.Key, m.Length, m.LastModified, "abandoned upload marker")));
            return new RemoteCollectionPlan(root, indexNames.Count, scanned, kept, spared, byUploads, unused, indexNames, clock.Elapsed);
        }
    }

    /// <summary>The sweep of a plan: lists markers and indexes again, keeps what they now name,
    /// removes the rest in batches.</summary>
    public static RemoteCollectionResult Sweep(RemoteCollectionPlan plan, IObjectStore remote, RemoteCollectionOptions? options = null,
        Action<RemoteGarbage>? onRemoved = null, IProgress<MaintenanceProgress>? progress = null, CancellationToken cancel = default)
    {
        options ??= new RemoteCollectionOptions();
        var clock = Stopwatch.StartNew();
        var throttle = new ProgressThrottle(progress, $"Removing unused objects from {plan.Root}");
        var state = new PolledProgress();
        state.Start("Removing", plan.Unused.Count, "objects");
        return PolledProgress.RunReporting(Task.Run(SweepAsync, cancel), state, throttle);

        async Task<RemoteCollectionResult> SweepAsync()
        {
            long removed = 0, bytes = 0, rescued = 0, processed = 0;
            const int Batch = 1000;
            for (int first = 0; first < plan.Unused.Count; first += Batch)
            {
                cancel.ThrowIfCancellationRequested();
                // Markers first, then indexes: a publish removes its marker only after its index.
                var now = DateTimeOffset.UtcNow;
                var (protectedPacks, protectedNames, _) = await ReadMarkersAsync(remote, plan.Root, options, now, cancel).ConfigureAwait(false);
                var indexes = (await ListAsync(remote, RemoteLayout.IndexesFolder, cancel).ConfigureAwait(false))
                    .Select(o => RemoteLayout.NameOfKey(o.Key, RemoteLayout.IndexesFolder)).OfType<string>().ToList();
                foreach (var name in indexes.Where(n => !plan.KnownIndexes.Contains(n)))
                {
                    protectedNames.Add(name);
                    protectedPacks.UnionWith((await ReadMapAsync(remote, plan.Root, name, cancel).ConfigureAwait(false)).Packs);
                }
                var batch = plan.Unused.Skip(first).Take(Batch).ToList();
                var doomed = new List<RemoteGarbage>();
                foreach (var g in batch)
                {
                    bool keep = RemoteLayout.PackOfKey(g.Key) is { } id ? protectedPacks.Contains(id)
                        : RemoteLayout.NameOfKey(g.Key, RemoteLayout.MapsFolder) is { } n && (protectedNames.Contains(n) || indexes.Contains(n));
                    if (keep) rescued++;
                    else doomed.Add(g);
                }
                if (doomed.Count > 0) await remote.DeleteAsync(doomed.Select(d => d.Key).ToList(), cancel).ConfigureAwait(false);
                foreach (var d in doomed)
                {
                    removed++;
                    bytes += d.Length;
                    onRemoved?.Invoke(d);
                }
                processed += batch.Count;
                state.Advance(batch.Count);
            }
            return new RemoteCollectionResult(plan.Root.ToString(), plan.Indexes, plan.PacksScanned, plan.PacksReferenced, plan.PacksSpared,
                plan.PacksProtectedByUploads, plan.Unused.Count, plan.BytesUnused, removed, bytes, rescued, false, plan.Elapsed + clock.Elapsed);
        }
    }

    /// <summary>Plan and sweep in one go.</summary>
    public static RemoteCollectionResult Collect(IObjectStore remote, S3Location root, RemoteCollectionOptions? options = null,
        IProgress<MaintenanceProgress>? progress = null, CancellationToken cancel = default) =>
        Sweep(Plan(remote, root, options, progress, cancel), remote, options, null, progress, cancel);

    /// <summary>A plan as a result (nothing removed: -WhatIf).</summary>
    public static RemoteCollectionResult ToResult(RemoteCollectionPlan plan) =>
        new(plan.Root.ToString(), plan.Indexes, plan.PacksScanned, plan.PacksReferenced, plan.PacksSpared, plan.PacksProtectedByUploads,
            plan.Unused.Count, plan.BytesUnused, 0, 0, 0, true, plan.Elapsed);

    private static bool IsYoung(ObjectInfo o, DateTimeOffset now, TimeSpan age) =>
        o.LastModified is not { } written || now - written < age; // no time known: treat as young

    private static async Task<List<ObjectInfo>> ListAsync(IObjectStore remote, string folder, CancellationToken cancel)
    {
        var all = new List<ObjectInfo>();
        await foreach (var o in remote.ListAllAsync(folder, cancel).ConfigureAwait(false)) all.Add(o);
        return all;
    }

    /// <summary>The packs and names live markers protect, and the stale markers.</summary>
    private static async Task<(HashSet<PackId> Packs, HashSet<string> Names, List<ObjectInfo> Stale)> ReadMarkersAsync(
        IObjectStore remote, S3Location root, RemoteCollectionOptions options, DateTimeOffset now, CancellationToken cancel)
    {
        var packs = new HashSet<PackId>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var stale = new List<ObjectInfo>();
        foreach (var o in await ListAsync(remote, RemoteLayout.UploadsFolder, cancel).ConfigureAwait(false))
        {
            if (RemoteLayout.NameOfKey(o.Key, RemoteLayout.UploadsFolder) is null) continue;
            if (!IsYoung(o, now, options.StaleUploadAge)) { stale.Add(o); continue; }
            byte[] bytes;
            try { bytes = await RemoteIndexMirror.GetWholeAsync(remote, o.Key, root.Child(o.Key).ToString(), ShuruErrorKind.RemoteObjectMissing, cancel).ConfigureAwait(false); }
            catch (ShuruStoreException e) when (e.Kind == ShuruErrorKind.RemoteObjectMissing) { continue; } // finished meanwhile
            var marker = UploadMarker.Parse(bytes, root.Child(o.Key).ToString());
            packs.UnionWith(marker.Packs);
            names.UnionWith(marker.Names);
        }
        return (packs, names, stale);
    }

    private static async Task<ChunkMap> ReadMapAsync(IObjectStore remote, S3Location root, string name, CancellationToken cancel)
    {
        string uri = root.Child(RemoteLayout.MapKey(name)).ToString();
        try
        {
            return ChunkMap.Parse(await RemoteIndexMirror.GetWholeAsync(remote, RemoteLayout.MapKey(name), uri, ShuruErrorKind.RemoteObjectMissing, cancel).ConfigureAwait(false), uri);
        }
        catch (ShuruStoreException e) when (e.Kind is ShuruErrorKind.RemoteObjectMissing or ShuruErrorKind.RemoteInvalid)
        {
            throw new ShuruStoreException(e.Kind,
                $"published index {RemoteLayout.IndexUri(root, name)} has no readable chunk map ({e.Message}); nothing was collected: verify the store", uri, e);
        }
    }
}
