using System.Collections.Concurrent;
using System.Diagnostics;
using ShuruStore.Core.Maintenance;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Remote;

/// <summary>What is wrong with an object of a remote store.</summary>
public enum RemoteProblemKind
{
    /// <summary>A published index cannot be read or parsed, or names a local parent or base image.</summary>
    IndexInvalid,
    /// <summary>A published index names a parent that is not published.</summary>
    ParentMissing,
    /// <summary>A published index has no chunk map.</summary>
    MapMissing,
    /// <summary>A chunk map cannot be parsed, or belongs to another version of its index.</summary>
    MapInvalid,
    /// <summary>An index names a chunk no map of its chain locates.</summary>
    ChunkNotLocated,
    /// <summary>A map points into a pack that does not exist.</summary>
    PackMissing,
    /// <summary>A pack is shorter than a map says, or its header does not match its name.</summary>
    PackInvalid,
    /// <summary>A chunk's bytes in its pack do not hash to its name.</summary>
    ChunkDamaged,
    /// <summary>A pack no index references (collection removes it once past the grace period; not a fault).</summary>
    UnreferencedPack,
    /// <summary>An upload marker older than the stale-upload age (an abandoned upload; not a fault).</summary>
    StaleUpload,
}

/// <summary>One problem found by <see cref="RemoteVerifier"/>.</summary>
/// <param name="Kind">What is wrong.</param>
/// <param name="Uri">The object at fault (<c>s3://…</c>).</param>
/// <param name="Detail">A sentence saying what was found.</param>
/// <param name="Hash">The chunk concerned, when there is one.</param>
public sealed record RemoteProblem(RemoteProblemKind Kind, string Uri, string Detail, ChunkHash? Hash = null)
{
    /// <summary>Whether it makes a published checkpoint unreadable (everything but unreferenced packs and stale markers).</summary>
    public bool IsFault => Kind is not (RemoteProblemKind.UnreferencedPack or RemoteProblemKind.StaleUpload);
}

/// <summary>What to verify.</summary>
public sealed record RemoteVerifyOptions
{
    /// <summary>Download every referenced chunk and check it against its name (else only the
    /// structure: indexes, maps, packs present and long enough).</summary>
    public bool ReadChunks { get; init; } = true;

    /// <summary>Packs downloaded at once.</summary>
    public int Parallelism { get; init; } = 16;

    /// <summary>Markers older than this are reported as abandoned uploads.</summary>
    public TimeSpan StaleUploadAge { get; init; } = new RemoteCollectionOptions().StaleUploadAge;
}

/// <summary>Totals of a remote verification.</summary>
public sealed record RemoteVerifyResult(string Root, int IndexesChecked, long PacksChecked, long ChunksChecked, long BytesChecked,
    int Faults, int Notes, TimeSpan Elapsed)
{
    /// <summary>No fault: every published checkpoint is complete and every chunk read was intact.</summary>
    public bool IsHealthy => Faults == 0;
}

/// <summary>
/// Checks a remote store: every published index parses, has its map (which belongs to it) and a
/// published parent; every chunk of every chain is located; every pack the maps point into exists
/// and is long enough; and (by default) every located chunk's bytes hash to its name. Read-only:
/// the repair of a damaged remote is to publish again from a host that has the chunks.
/// </summary>
public static class RemoteVerifier
{
    /// <summary>Verifies; each problem is passed to <paramref name="onProblem"/> on the calling thread.</summary>
    public static RemoteVerifyResult Verify(IObjectStore remote, S3Location root, RemoteVerifyOptions? options = null,
        Action<RemoteProblem>? onProblem = null, IProgress<MaintenanceProgress>? progress = null, CancellationToken cancel = default)
    {
        options ??= new RemoteVerifyOptions();
        var clock = Stopwatch.StartNew();
        var throttle = new ProgressThrottle(progress, $"Verifying {root}");
        var problems = new ConcurrentQueue<RemoteProblem>();
        int faults = 0, notes = 0;
        void Report()
        {
            while (problems.TryDequeue(out var p))
            {
                if (p.IsFault) faults++; else notes++;
                onProblem?.Invoke(p);
            }
        }
        var task = Task.Run(() => VerifyAsync(remote, root, options, problems, cancel), cancel);
        while (Task.WaitAny([task], 200) < 0) Report();
        var (indexes, packs, chunks, bytes) = task.GetAwaiter().GetResult();
        Report();
        throttle.Report("Done", 1, 1, "objects", force: true);
        return new RemoteVerifyResult(root.ToString(), indexes, packs, chunks, bytes, faults, notes, clock.Elapsed);
    }

    private static async Task<(int, long, long, long)> VerifyAsync(IObjectStore remote, S3Location root, RemoteVerifyOptions options,
        ConcurrentQueue<RemoteProblem> problems, CancellationToken cancel)
    {
        string Uri(string key) => root.Child(key).ToString();
        var indexKeys = await ListAsync(remote, RemoteLayout.IndexesFolder, cancel).ConfigureAwait(false);
        var packObjects = (await ListAsync(remote, RemoteLayout.PacksFolder, cancel).ConfigureAwait(false))
            .Where(o => RemoteLayout.PackOfKey(o.Key) is not null).ToDictionary(o => RemoteLayout.PackOfKey(o.Key)!.Value, o => o.Length);
        var names = indexKeys.Select(o => RemoteLayout.NameOfKey(o.Key, RemoteLayout.IndexesFolder)).OfType<string>().ToList();

        // Every index and its map.
        var indexes = new ConcurrentDictionary<string, (ChunkIndexFile Index, string? Parent)>(StringComparer.Ordinal);
        var maps = new ConcurrentDictionary<string, ChunkMap>(StringComparer.Ordinal);
        string scratch = Path.Combine(Path.GetTempPath(), "shuru-verify-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(scratch);
        try
        {
            await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = options.Parallelism, CancellationToken = cancel }, async (name, ct) =>
            {
                string uri = RemoteLayout.IndexUri(root, name);
                byte[] bytes;
                ChunkIndexFile index;
                try
                {
                    bytes = await RemoteIndexMirror.GetWholeAsync(remote, RemoteLayout.IndexKey(name), uri, ShuruErrorKind.IndexNotFound, ct).ConfigureAwait(false);
                    string tmp = Path.Combine(scratch, name + ".idx");
                    await File.WriteAllBytesAsync(tmp, bytes, ct).ConfigureAwait(false);
                    index = ChunkIndexFile.Load(tmp);
                }
                catch (ShuruStoreException e) when (e.Kind is ShuruErrorKind.IndexInvalid or ShuruErrorKind.IndexNotFound)
                {
                    problems.Enqueue(new RemoteProblem(RemoteProblemKind.IndexInvalid, uri, e.Message.Replace(scratch + "/", "", StringComparison.Ordinal)));
                    return;
                }
                string? parent = null;
                if (index.FallbackPath is not null)
                    problems.Enqueue(new RemoteProblem(RemoteProblemKind.IndexInvalid, uri, $"it names a base image file ('{index.FallbackPath}'); published chains have none"));
                if (index.ParentPath is { } p)
                {
                    if (!S3Location.IsS3Uri(p)) problems.Enqueue(new RemoteProblem(RemoteProblemKind.IndexInvalid, uri, $"it names a local parent '{p}'"));
                    else
                    {
                        try
                        {
                            var (parentRoot, parentName) = RemoteLayout.ParseIndexUri(p);
                            if (!parentRoot.Equals(root)) problems.Enqueue(new RemoteProblem(RemoteProblemKind.IndexInvalid, uri, $"its parent {p} is in another store"));
                            else if (!names.Contains(parentName)) problems.Enqueue(new RemoteProblem(RemoteProblemKind.ParentMissing, uri, $"its parent {p} is not published"));
                            else parent = parentName;
                        }
                        catch (ShuruStoreException e) { problems.Enqueue(new RemoteProblem(RemoteProblemKind.IndexInvalid, uri, e.Message)); }
                    }
                }
                indexes[name] = (index, parent);
                string mapUri = Uri(RemoteLayout.MapKey(name));
                try
                {
                    var map = ChunkMap.Parse(await RemoteIndexMirror.GetWholeAsync(remote, RemoteLayout.MapKey(name), mapUri, ShuruErrorKind.RemoteObjectMissing, ct).ConfigureAwait(false), mapUri);
                    if (!map.BelongsTo(bytes)) problems.Enqueue(new RemoteProblem(RemoteProblemKind.MapInvalid, mapUri, $"it belongs to another version of {uri}"));
                    else maps[name] = map;
                }
                catch (ShuruStoreException e) when (e.Kind == ShuruErrorKind.RemoteObjectMissing)
                { problems.Enqueue(new RemoteProblem(RemoteProblemKind.MapMissing, uri, $"its chunk map {mapUri} does not exist")); }
                catch (ShuruStoreException e) when (e.Kind == ShuruErrorKind.RemoteInvalid)
                { problems.Enqueue(new RemoteProblem(RemoteProblemKind.MapInvalid, mapUri, e.Message)); }
            }).ConfigureAwait(false);
        }
        finally
        {
            try { Directory.Delete(scratch, true); } catch (IOException) { }
        }

        // Every chunk of every chain located by the chain's maps.
        foreach (var (name, (index, _)) in indexes)
        {
            var located = new HashSet<ChunkHash>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (string? n = name; n is not null && seen.Add(n) && indexes.TryGetValue(n, out var member); n = member.Parent)
                if (maps.TryGetValue(n, out var m)) located.UnionWith(m.Entries.Select(e => e.Hash));
            foreach (var e in index.Entries.Distinct())
                if (e is { } h && !h.IsZeroChunk && !located.Contains(h))
                {
                    problems.Enqueue(new RemoteProblem(RemoteProblemKind.ChunkNotLocated, RemoteLayout.IndexUri(root, name), $"it names chunk {h}, which no map of its chain locates", h));
                    break; // one per index is enough to say it cannot be read
                }
        }

        // Every referenced pack present, long enough, and (optionally) every chunk intact.
        var byPack = new Dictionary<PackId, List<MapEntry>>();
        foreach (var map in maps.Values)
            foreach (var e in map.Entries)
            {
                var id = map.Packs[e.Pack];
                if (!byPack.TryGetValue(id, out var list)) byPack[id] = list = [];
                list.Add(e);
            }
        long packsChecked = 0, chunksChecked = 0, bytesChecked = 0;
        await Parallel.ForEachAsync(byPack, new ParallelOptions { MaxDegreeOfParallelism = options.Parallelism, CancellationToken = cancel }, async (kv, ct) =>
        {
            var (id, entries) = kv;
            string uri = Uri(RemoteLayout.PackKey(id));
            long need = entries.Max(e => (long)e.Offset + e.Length);
            if (!packObjects.TryGetValue(id, out long length))
            {
                problems.Enqueue(new RemoteProblem(RemoteProblemKind.PackMissing, uri, $"a map points into it and it does not exist ({entries.Count} chunks)"));
                return;
            }
            Interlocked.Increment(ref packsChecked);
            if (length < need)
                problems.Enqueue(new RemoteProblem(RemoteProblemKind.PackInvalid, uri, $"it is {length} bytes, a map points up to byte {need}"));
            if (!options.ReadChunks) return;
            var data = new byte[Math.Min(length, ChunkMap.MaxPackBytes)];
            int n = await remote.GetRangeAsync(RemoteLayout.PackKey(id), 0, data, ct).ConfigureAwait(false);
            Interlocked.Add(ref bytesChecked, n);
            if (!ChunkPack.TryParseHeader(data.AsSpan(0, n), out _, out int headerLength, out var error))
                problems.Enqueue(new RemoteProblem(RemoteProblemKind.PackInvalid, uri, $"its header is invalid: {error}"));
            else if (PackId.OfHeader(data.AsSpan(0, headerLength)) != id)
                problems.Enqueue(new RemoteProblem(RemoteProblemKind.PackInvalid, uri, "its header does not match its name"));
            foreach (var e in entries.DistinctBy(e => e.Hash))
            {
                Interlocked.Increment(ref chunksChecked);
                bool intact = e.Offset + (long)e.Length <= n && ChunkHasher.Hash(data.AsSpan(e.Offset, e.Length)) == e.Hash;
                if (!intact)
                    problems.Enqueue(new RemoteProblem(RemoteProblemKind.ChunkDamaged, uri,
                        $"chunk {e.Hash} at bytes {e.Offset}-{e.Offset + e.Length - 1} does not hash to its name (damaged or truncated)", e.Hash));
            }
        }).ConfigureAwait(false);

        // Notes: packs nobody needs, abandoned uploads.
        var now = DateTimeOffset.UtcNow;
        foreach (var (id, _) in packObjects)
            if (!byPack.ContainsKey(id)) problems.Enqueue(new RemoteProblem(RemoteProblemKind.UnreferencedPack, Uri(RemoteLayout.PackKey(id)), "no published index references it"));
        foreach (var o in await ListAsync(remote, RemoteLayout.UploadsFolder, cancel).ConfigureAwait(false))
            if (o.LastModified is { } t && now - t >= options.StaleUploadAge)
                problems.Enqueue(new RemoteProblem(RemoteProblemKind.StaleUpload, Uri(o.Key), $"an upload started {t:u} never finished"));
        return (indexes.Count, packsChecked, chunksChecked, bytesChecked);
    }

    private static async Task<List<ObjectInfo>> ListAsync(IObjectStore remote, string folder, CancellationToken cancel)
    {
        var all = new List<ObjectInfo>();
        await foreach (var o in remote.ListAllAsync(folder, cancel).ConfigureAwait(false)) all.Add(o);
        return all;
    }
}
