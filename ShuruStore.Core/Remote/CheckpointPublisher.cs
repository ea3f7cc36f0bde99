using System.Diagnostics;
using ShuruStore.Core.Maintenance;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Remote;

/// <summary>
/// Publishes a local checkpoint to a remote store so that any host can boot it with nothing else
/// (see <see cref="RemoteLayout"/> for what goes where). Plan, then execute:
/// <list type="number">
/// <item>The local chain is walked from the top. A member already published in the destination
/// (a mirror of a booted remote index, or a checkpoint published before: <see cref="IndexOrigins"/>,
/// confirmed by a HEAD) ends the walk and is named by its URI; its chain's maps say which chunks
/// the destination has. The members above it are published, parents first; local parents get a
/// name derived from their content, so publishing them again finds them. A base image under a
/// fully local chain becomes an index of its pieces at the bottom (<see cref="BasePiecesIndex"/>).</item>
/// <item>Each new index adds the chunks its entries name that no map below it locates, in entry
/// (disk) order, cut into packs of at most <see cref="PublishOptions.PackBytes"/>. A pack's name
/// is derived from its content list, so the same chunks make the same pack; packs already in the
/// destination (an interrupted run's) are not uploaded again.</item>
/// <item>Executing writes the upload marker first (a collection keeps everything it names), uploads
/// the missing packs (<see cref="PublishOptions.Parallelism"/> at once, every chunk verified
/// against its name as it is read), checks that the packs it relies on are still there, then,
/// parents first, each index's map and then the index; it records the origins locally and removes
/// the marker. An interrupted run leaves whole packs and the marker; running it again finishes
/// it. A published index never names data the destination does not have.</item>
/// </list>
/// A checkpoint already published (same name, same bytes) is found by the plan: nothing is
/// uploaded. A different checkpoint under a published name is refused: published indexes never
/// change, which is what lets every host cache them.
/// </summary>
public static class CheckpointPublisher
{
    private const int CS = ChunkHasher.ChunkSize;

    /// <summary>Plans a publish to the destination in the AWS environment. Touches nothing remote.</summary>
    public static PublishPlan Plan(PublishOptions options, ObjectStoreOptions? storeOptions = null, CancellationToken cancel = default)
    {
        var root = S3Location.Parse(options.Destination);
        using var remote = S3ObjectStore.FromEnvironment(root, storeOptions);
        return Plan(options, remote, root, cancel);
    }

    /// <summary>Plans and executes a publish to the destination in the AWS environment. Progress
    /// (bytes of packs uploaded) is reported on the calling thread.</summary>
    public static PublishResult Publish(PublishOptions options, ObjectStoreOptions? storeOptions = null,
        IProgress<MaintenanceProgress>? progress = null, CancellationToken cancel = default)
    {
        var root = S3Location.Parse(options.Destination);
        using var remote = S3ObjectStore.FromEnvironment(root, storeOptions);
        return Execute(Plan(options, remote, root, cancel), remote, progress, cancel);
    }

    /// <summary>What publishing <paramref name="options"/> to <paramref name="remote"/> (rooted at
    /// <paramref name="root"/>) would do. Reads the destination, writes nothing there.</summary>
    public static PublishPlan Plan(PublishOptions options, IObjectStore remote, S3Location root, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (!root.Equals(S3Location.Parse(options.Destination)))
            throw new ShuruStoreException(ShuruErrorKind.InvalidArgument, $"the object store is rooted at {root}, not at the destination {options.Destination}");
        string topName = RemoteLayout.NormalizeName(options.Name ?? Path.GetFileNameWithoutExtension(options.IndexPath));
        string topUri = RemoteLayout.IndexUri(root, topName);
        string cas = Path.GetFullPath(options.CasPath);
        var chain = IndexChain.Load(options.IndexPath);
        var local = chain.Parents.Select(p => (Path: p.Path, Index: p.Index)).Prepend((Path: chain.Path, Index: chain.Top)).ToList(); // top first
        return PlanAsync().GetAwaiter().GetResult();

        async Task<PublishPlan> PlanAsync()
        {
            // 1. Where the local chain meets the destination.
            var known = new List<ChunkMap>();
            string? boundaryUri = null;
            int boundary = local.Count; // members [0, boundary) are published by this run
            for (int i = 0; i < local.Count; i++)
            {
                cancel.ThrowIfCancellationRequested();
                var bytes = File.ReadAllBytes(local[i].Path);
                foreach (var origin in IndexOrigins.Find(cas, bytes))
                {
                    var (originRoot, originName) = RemoteLayout.ParseIndexUri(origin.Uri);
                    if (!originRoot.Equals(root)) continue;
                    if (!await IsPublishedAsync(remote, originName, origin.RemoteLength, cancel).ConfigureAwait(false)) continue;
                    var published = await RemoteIndexMirror.FetchAsync(remote, root, originName, cas, cancel).ConfigureAwait(false);
                    known.AddRange(published.Members.Select(m => m.Map));
                    if (i == 0 && origin.Uri != topUri) continue; // the top under another name: its maps help, it is still published
                    boundary = i;
                    boundaryUri = origin.Uri;
                    break;
                }
                if (boundaryUri is not null) break;
            }
            if (boundary == 0)
            {
                var done = new PublishMember(topName, topUri, chain.Path, PublishAction.AlreadyPublished, 0, 0);
                return new PublishPlan(options, root, topUri, [done], [], [], new Dictionary<ChunkHash, long>(), null);
            }

            // 2. The base image's pieces, under a fully local chain.
            var toPublish = local.Take(boundary).Reverse().ToList(); // bottom first
            string? basePath = null;
            var fallbacks = local.Take(boundary).Select(m => m.Index.FallbackPath is null ? null
                : Path.GetFullPath(m.Index.FallbackPath, Path.GetDirectoryName(m.Path)!)).Where(f => f is not null).Distinct().ToList();
            if (fallbacks.Count > 1)
                throw new ShuruStoreException(ShuruErrorKind.InvalidArgument,
                    $"the chain of '{chain.Path}' names different base images ({string.Join(", ", fallbacks)}); only a chain over one base can be published", chain.Path);
            if (fallbacks.Count == 1)
            {
                var bottom = toPublish[0];
                if (boundaryUri is not null)
                    throw new ShuruStoreException(ShuruErrorKind.InvalidArgument,
                        $"the chain of '{chain.Path}' names base image '{fallbacks[0]}' above the published index {boundaryUri}; a published chain has no base image below it", chain.Path);
                if (bottom.Index.FallbackPath is null)
                    throw new ShuruStoreException(ShuruErrorKind.InvalidArgument,
                        $"the chain of '{chain.Path}' names base image '{fallbacks[0]}' above its bottom index '{bottom.Path}', which names none; only a base named by the bottom index can be published", chain.Path);
                basePath = fallbacks[0];
            }

            var members = new List<PublishMember>();
            var uploads = new List<PlannedIndex>();
            var packs = new List<PlannedPack>();
            var packIds = new HashSet<PackId>();
            var basePieces = new Dictionary<ChunkHash, long>();
            long baseLength = basePath is null ? 0 : new FileInfo(basePath).Length;
            string? parentUri = boundaryUri;
            using var store = new FileChunkStore(cas, readOnly: true);
            if (basePath is not null)
            {
                var (baseIndex, offsets) = BasePiecesIndex.Build(basePath, toPublish[0].Index, cancel);
                var baseBytes = baseIndex.ToBytes();
                string baseName = "base-" + Convert.ToHexStringLower(ChunkMap.DigestOf(baseBytes))[..16];
                foreach (var (h, at) in offsets) basePieces[h] = at;
                parentUri = await AddMemberAsync(baseName, baseIndex, baseBytes, null, null).ConfigureAwait(false);
            }
            for (int i = 0; i < toPublish.Count; i++)
            {
                var (path, index) = toPublish[i];
                bool isTop = i == toPublish.Count - 1;
                var published = new ChunkIndexFile(index.DiskSize, parentUri, null, index.Entries);
                var bytes = published.ToBytes();
                string name = isTop ? topName : ParentName(path, bytes);
                parentUri = await AddMemberAsync(name, published, bytes, path, File.ReadAllBytes(path)).ConfigureAwait(false);
            }

            // 3. Which planned packs the destination already has (an interrupted run's).
            var exists = new bool[packs.Count];
            using (var slots = new SemaphoreSlim(options.Parallelism * 2))
            {
                await Task.WhenAll(packs.Select(async (p, i) =>
                {
                    await slots.WaitAsync(cancel).ConfigureAwait(false);
                    try { exists[i] = (await remote.HeadAsync(RemoteLayout.PackKey(p.Id), cancel).ConfigureAwait(false))?.Length == p.Length; }
                    finally { slots.Release(); }
                })).ConfigureAwait(false);
            }
            var planned = packs.Select((p, i) => p with { Exists = exists[i] }).ToList();
            return new PublishPlan(options, root, topUri, members, planned, uploads, basePieces, basePath);

            // Adds one index to publish (or finds it published) and returns its URI.
            async Task<string> AddMemberAsync(string name, ChunkIndexFile index, byte[] bytes, string? path, byte[]? localBytes)
            {
                string uri = RemoteLayout.IndexUri(root, name);
                var existing = await remote.HeadAsync(RemoteLayout.IndexKey(name), cancel).ConfigureAwait(false);
                if (existing is not null)
                {
                    var remoteBytes = await RemoteIndexMirror.GetWholeAsync(remote, RemoteLayout.IndexKey(name), uri, ShuruErrorKind.IndexNotFound, cancel).ConfigureAwait(false);
                    if (!remoteBytes.AsSpan().SequenceEqual(bytes))
                        throw new ShuruStoreException(ShuruErrorKind.InvalidArgument,
                            $"{uri} is already published with other content; published checkpoints never change: choose another name", uri);
                    if (await remote.HeadAsync(RemoteLayout.MapKey(name), cancel).ConfigureAwait(false) is not null)
                    {
                        var publishedChain = await RemoteIndexMirror.FetchAsync(remote, root, name, cas, cancel).ConfigureAwait(false);
                        known.AddRange(publishedChain.Members.Select(m => m.Map));
                        members.Add(new PublishMember(name, uri, path, PublishAction.AlreadyPublished, 0, 0));
                        uploads.Add(new PlannedIndex(name, bytes, null, path, localBytes));
                        return uri;
                    }
                }
                var located = new HashSet<ChunkHash>(known.SelectMany(m => m.Entries.Select(e => e.Hash)));
                var needed = new List<PackEntry>();
                foreach (var e in index.Entries)
                {
                    if (e is not { } h || h.IsZeroChunk || !located.Add(h)) continue;
                    int len = LengthOf(h);
                    if (len < 0)
                        throw new ShuruStoreException(ShuruErrorKind.ChunkMissing,
                            $"chunk {h} named by '{path ?? name}' is not in the chunk store '{cas}'; it cannot be published", path ?? cas);
                    if (len is 0 or > CS)
                        throw new ShuruStoreException(ShuruErrorKind.ChunkCorrupt, $"chunk {h} in '{cas}' is {len} bytes long", cas);
                    needed.Add(new PackEntry(h, len));
                }
                var mapPacks = new List<PackId>();
                var entries = new List<MapEntry>();
                long bytesAdded = 0;
                for (int start = 0; start < needed.Count;)
                {
                    int end = start;
                    long data = 0;
                    while (end < needed.Count && end - start < ChunkPack.MaxEntries && (end == start || data + needed[end].Length <= options.PackBytes))
                        data += needed[end++].Length;
                    var packEntries = needed.GetRange(start, end - start);
                    var header = ChunkPack.BuildHeader(packEntries);
                    var id = PackId.OfHeader(header);
                    int offset = header.Length;
                    foreach (var pe in packEntries)
                    {
                        entries.Add(new MapEntry(pe.Hash, mapPacks.Count, offset, pe.Length));
                        offset += pe.Length;
                    }
                    mapPacks.Add(id);
                    if (packIds.Add(id)) packs.Add(new PlannedPack(id, packEntries, offset, false));
                    bytesAdded += data;
                    start = end;
                }
                var map = new ChunkMap(ChunkMap.DigestOf(bytes), mapPacks, entries);
                known.Add(map);
                members.Add(new PublishMember(name, uri, path, PublishAction.Upload, needed.Count, bytesAdded));
                uploads.Add(new PlannedIndex(name, bytes, map, path, localBytes));
                return uri;
            }

            // A chunk's stored length: its file in the local store, else its piece of the base; -1 when neither has it.
            int LengthOf(ChunkHash h)
            {
                try { return checked((int)Math.Min(int.MaxValue, new FileInfo(store.PathOf(h)).Length)); }
                catch (FileNotFoundException) { }
                return basePieces.TryGetValue(h, out long at) ? (int)Math.Min(CS, baseLength - at) : -1;
            }
        }
    }

    /// <summary>
    /// Executes a plan: marker, missing packs, maps and indexes parents first, origins, marker
    /// removed. Progress (bytes of packs uploaded) is reported on the calling thread; cancelling
    /// stops the uploads at once and leaves what was uploaded for the next run.
    /// </summary>
    public static PublishResult Execute(PublishPlan plan, IObjectStore remote, IProgress<MaintenanceProgress>? progress = null, CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        var throttle = new ProgressThrottle(progress, $"Publishing {plan.Uri}");
        var counters = new UploadCounters();
        var task = Task.Run(() => ExecuteAsync(plan, remote, counters, cancel), cancel);
        long total = plan.BytesToUpload;
        while (Task.WaitAny([task], 200) < 0)
            throttle.Report("Uploading packs", Interlocked.Read(ref counters.PackBytes), total, "bytes");
        var (indexes, packsUploaded, chunks, bytes) = task.GetAwaiter().GetResult();
        throttle.Report("Done", total, total, "bytes", force: true);
        return new PublishResult(plan.Uri, indexes, packsUploaded, chunks, bytes, plan.Packs.Count - packsUploaded, plan.AlreadyPublished, clock.Elapsed);
    }

    private sealed class UploadCounters
    {
        public long PackBytes;
    }

    private static async Task<(int Indexes, int Packs, long Chunks, long Bytes)> ExecuteAsync(PublishPlan plan, IObjectStore remote, UploadCounters counters, CancellationToken cancel)
    {
        string cas = Path.GetFullPath(plan.Options.CasPath);
        if (plan.AlreadyPublished)
        {
            foreach (var u in plan.Uploads) RecordOrigin(cas, plan.Root, u);
            return (0, 0, 0, 0);
        }
        string topName = plan.Members[^1].Name;
        var newIndexes = plan.Uploads.Where(u => u.Map is not null).ToList();
        long bytes = 0;
        var marker = new UploadMarker(newIndexes.Select(u => u.Name).ToList(), plan.Packs.Select(p => p.Id).ToList()).ToBytes();
        await remote.PutAsync(RemoteLayout.UploadKey(topName), marker, cancel).ConfigureAwait(false);
        bytes += marker.Length;

        using var store = new FileChunkStore(cas, readOnly: true);
        using var baseHandle = plan.BaseImagePath is null ? null : DiskImporter.OpenRead(plan.BaseImagePath, ShuruErrorKind.BaseImageMissing, "base image");
        int uploaded = 0;
        long chunks = 0;
        async Task UploadAsync(PlannedPack pack)
        {
            var content = Build(pack);
            await remote.PutAsync(RemoteLayout.PackKey(pack.Id), content, cancel).ConfigureAwait(false);
            Interlocked.Increment(ref uploaded);
            Interlocked.Add(ref chunks, pack.Entries.Count);
            Interlocked.Add(ref counters.PackBytes, content.Length);
        }
        byte[] Build(PlannedPack pack)
        {
            var content = GC.AllocateUninitializedArray<byte>(checked((int)pack.Length));
            var header = ChunkPack.BuildHeader(pack.Entries);
            header.CopyTo(content, 0);
            int at = header.Length;
            var scratch = new byte[CS];
            foreach (var e in pack.Entries)
            {
                if (store.TryRead(e.Hash, scratch, out int len))
                {
                    if (len != e.Length)
                        throw new ShuruStoreException(ShuruErrorKind.ChunkCorrupt, $"chunk {e.Hash} in '{cas}' is {len} bytes, {e.Length} when planned", cas);
                }
                else if (baseHandle is not null && plan.BasePieces.TryGetValue(e.Hash, out long offset))
                    len = BasePiecesIndex.ReadPiece(baseHandle, plan.BaseImagePath!, offset, e.Hash, scratch);
                else
                    throw new ShuruStoreException(ShuruErrorKind.ChunkMissing, $"chunk {e.Hash} is no longer in the chunk store '{cas}'", cas);
                scratch.AsSpan(0, len).CopyTo(content.AsSpan(at));
                at += len;
            }
            return content;
        }

        await ForEachAsync(plan.Packs.Where(p => !p.Exists), plan.Options.Parallelism, UploadAsync, cancel).ConfigureAwait(false);
        // The packs relied on must still be there (a collection may have taken an old orphan
        // between the plan and the marker): the ones gone are uploaded now.
        var relied = plan.Packs.Where(p => p.Exists).ToList();
        var gone = new System.Collections.Concurrent.ConcurrentBag<PlannedPack>();
        await ForEachAsync(relied, plan.Options.Parallelism * 2, async p =>
        {
            if ((await remote.HeadAsync(RemoteLayout.PackKey(p.Id), cancel).ConfigureAwait(false))?.Length != p.Length) gone.Add(p);
        }, cancel).ConfigureAwait(false);
        await ForEachAsync(gone, plan.Options.Parallelism, UploadAsync, cancel).ConfigureAwait(false);
        bytes += Interlocked.Read(ref counters.PackBytes);

        // Parents first; each map before its index: the index is the last thing of it to appear.
        foreach (var u in newIndexes)
        {
            var mapBytes = u.Map!.ToBytes();
            await remote.PutAsync(RemoteLayout.MapKey(u.Name), mapBytes, cancel).ConfigureAwait(false);
            await remote.PutAsync(RemoteLayout.IndexKey(u.Name), u.Bytes, cancel).ConfigureAwait(false);
            bytes += mapBytes.Length + u.Bytes.Length;
        }
        foreach (var u in plan.Uploads) RecordOrigin(cas, plan.Root, u);
        await remote.DeleteAsync([RemoteLayout.UploadKey(topName)], cancel).ConfigureAwait(false);
        return (newIndexes.Count, uploaded, chunks, bytes);
    }

    private static void RecordOrigin(string cas, S3Location root, PlannedIndex u)
    {
        if (u.LocalBytes is null) return;
        IndexOrigins.Record(cas, u.LocalBytes, new IndexOrigin(RemoteLayout.IndexUri(root, u.Name),
            Convert.ToHexStringLower(ChunkMap.DigestOf(u.Bytes)), u.Bytes.Length));
    }

    /// <summary>Whether the published index <paramref name="name"/> is in the destination with
    /// the length its origin record says, and has its map.</summary>
    private static async Task<bool> IsPublishedAsync(IObjectStore remote, string name, long length, CancellationToken cancel)
    {
        var index = await remote.HeadAsync(RemoteLayout.IndexKey(name), cancel).ConfigureAwait(false);
        return index?.Length == length && await remote.HeadAsync(RemoteLayout.MapKey(name), cancel).ConfigureAwait(false) is not null;
    }

    /// <summary>The name of a local parent published with the checkpoint: its file name and a
    /// digest of its published bytes, so the same parent always gets the same name.</summary>
    private static string ParentName(string path, byte[] publishedBytes)
    {
        var stem = new string(Path.GetFileNameWithoutExtension(path).Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '_').ToArray());
        if (stem.Length == 0 || !char.IsAsciiLetterOrDigit(stem[0])) stem = "p" + stem;
        if (stem.Length > 100) stem = stem[..100];
        return $"{stem}-{Convert.ToHexStringLower(ChunkMap.DigestOf(publishedBytes))[..16]}";
    }

    private static async Task ForEachAsync<T>(IEnumerable<T> items, int parallelism, Func<T, Task> body, CancellationToken cancel)
    {
        await Parallel.ForEachAsync(items, new ParallelOptions { MaxDegreeOfParallelism = parallelism, CancellationToken = cancel },
            async (item, _) => await body(item).ConfigureAwait(false)).ConfigureAwait(false);
    }
}
