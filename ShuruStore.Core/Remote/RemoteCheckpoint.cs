using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Remote;

/// <summary>How a published checkpoint is opened: object-store limits and the local cache's
/// read-ahead and size limit. Holds no endpoint or credentials (those come from the AWS
/// environment), so it is safe to print.</summary>
public sealed record RemoteCheckpointOptions
{
    /// <summary>Deadline, attempt timeout, backoff and concurrency of object-store requests.</summary>
    public ObjectStoreOptions ObjectStore { get; init; } = ObjectStoreOptions.Default;

    /// <summary>Read-ahead and the local cache's size limit.</summary>
    public RemoteChunkStoreOptions Cache { get; init; } = RemoteChunkStoreOptions.Default;

    /// <summary>The defaults.</summary>
    public static RemoteCheckpointOptions Default { get; } = new();
}

/// <summary>
/// A published checkpoint opened through a local chunk store: its chain mirrored into the store
/// (<see cref="RemoteIndexMirror"/>), and a <see cref="RemoteChunkStore"/> that fetches what the
/// local store lacks. A disk boots from <see cref="LocalIndexPath"/> with <see cref="Store"/>
/// as its chunk store; the local engine (index chains, checkpoints, collection) sees normal
/// local indexes. Disposing closes the store (and the local store under it).
/// </summary>
public sealed class RemoteCheckpoint : IDisposable
{
    private RemoteCheckpoint(MirroredChain chain, string localIndexPath, RemoteChunkStore store)
    {
        Chain = chain;
        LocalIndexPath = localIndexPath;
        Store = store;
    }

    /// <summary>The published chain (top first), as mirrored locally.</summary>
    public MirroredChain Chain { get; }

    /// <summary>The published index of the chain's top (the one booted from a URI, or the
    /// remote parent of a local checkpoint).</summary>
    public string IndexUri => Chain.Members[0].Uri;

    /// <summary>The remote store the chain is published in.</summary>
    public S3Location Root => Chain.Root;

    /// <summary>The local index to boot from: the mirror of the published index, or the local
    /// checkpoint whose chain reaches it.</summary>
    public string LocalIndexPath { get; }

    /// <summary>The chunk store: local chunks, and fetches of the chain's remote chunks.</summary>
    public RemoteChunkStore Store { get; }

    /// <summary>
    /// Opens the published index <paramref name="indexUri"/> (<c>s3://BUCKET/PREFIX/indexes/NAME.idx</c>)
    /// through the local store <paramref name="casPath"/>, endpoint and credentials from the AWS
    /// environment and profile. Fails if the chain cannot be mirrored (object store away and no
    /// complete mirror yet, missing parent, damaged map) or names a chunk no map locates.
    /// <paramref name="holder"/> is who registers in the local store (the server); null: a writer.
    /// </summary>
    public static RemoteCheckpoint Open(string indexUri, string casPath, RemoteCheckpointOptions? options = null,
        StoreHolder? holder = null, CancellationToken cancel = default)
    {
        options ??= RemoteCheckpointOptions.Default;
        var (root, name) = RemoteLayout.ParseIndexUri(indexUri);
        var remote = S3ObjectStore.FromEnvironment(root, options.ObjectStore);
        try { return Open(remote, root, name, casPath, options.Cache, holder, ownsRemote: true, cancel); }
        catch { remote.Dispose(); throw; }
    }

    /// <summary>As <see cref="Open(string, string, RemoteCheckpointOptions?, StoreHolder?, CancellationToken)"/>
    /// on a given object store whose root is the published store <paramref name="root"/> (<c>s3://BUCKET/PREFIX</c>).</summary>
    public static RemoteCheckpoint Open(IObjectStore remote, S3Location root, string name, string casPath, RemoteChunkStoreOptions? cacheOptions = null,
        StoreHolder? holder = null, bool ownsRemote = false, CancellationToken cancel = default)
    {
        name = RemoteLayout.NormalizeName(name);
        Directory.CreateDirectory(casPath);
        MirroredChain chain;
        try { chain = RemoteIndexMirror.FetchAsync(remote, root, name, casPath, cancel).GetAwaiter().GetResult(); }
        catch (ShuruStoreException e) when (e.Kind == ShuruErrorKind.RemoteUnavailable
            && RemoteIndexMirror.TryLoad(casPath, RemoteIndexMirror.MirrorPathOf(casPath, root, name)) is { } cached)
        {
            chain = cached; // the store is away, but the chain was mirrored before: boot from the cache
        }
        return Build(chain, chain.TopPath, remote, casPath, cacheOptions, holder, ownsRemote);
    }

    /// <summary>
    /// For a local index whose chain reaches a mirrored published index (a checkpoint saved from
    /// a disk booted from a URI): the remote tier that chain needs, or null when the chain is all
    /// local. Endpoint and credentials from the AWS environment.
    /// </summary>
    public static RemoteCheckpoint? OpenForLocalIndex(string indexPath, string casPath, RemoteCheckpointOptions? options = null,
        StoreHolder? holder = null)
    {
        options ??= RemoteCheckpointOptions.Default;
        if (FindMirroredChain(indexPath, casPath) is not { } chain) return null;
        var remote = S3ObjectStore.FromEnvironment(chain.Root, options.ObjectStore);
        try { return Build(chain, Path.GetFullPath(indexPath), remote, casPath, options.Cache, holder, ownsRemote: true); }
        catch { remote.Dispose(); throw; }
    }

    /// <summary>The mirrored published chain a local index's chain reaches, or null.</summary>
    public static MirroredChain? FindMirroredChain(string indexPath, string casPath)
    {
        // A store that never held a mirror needs no look at the chain (the common, local case).
        if (!Directory.Exists(Path.Combine(Path.GetFullPath(casPath), IndexOrigins.RemoteFolder, "mirror"))) return null;
        var local = IndexChain.Load(indexPath);
        foreach (var path in local.AllPaths)
            if (RemoteIndexMirror.TryLoad(casPath, path) is { } chain) return chain;
        return null;
    }

    private static RemoteCheckpoint Build(MirroredChain chain, string localIndexPath, IObjectStore remote, string casPath,
        RemoteChunkStoreOptions? cacheOptions, StoreHolder? holder, bool ownsRemote)
    {
        cacheOptions ??= RemoteChunkStoreOptions.Default;
        // Every chunk the published chain names must be located by its maps: refuse at open
        // rather than fail reads later.
        var located = new HashSet<ChunkHash>(chain.Members.SelectMany(m => m.Map.Entries.Select(e => e.Hash)));
        foreach (var m in chain.Members)
            foreach (var e in m.Index.Entries)
                if (e is { } h && !h.IsZeroChunk && !located.Contains(h))
                    throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid,
                        $"published index {m.Uri} names chunk {h}, which no chunk map of its chain locates", m.Uri);
        var local = new FileChunkStore(casPath, new FileChunkStoreOptions
        {
            Holder = (holder ?? new StoreHolder("writer")) with { BootIndexPath = localIndexPath },
            // Deleted cache files stay on disk while held open: with a limit, hold fewer.
            OpenChunkFiles = cacheOptions.CacheLimitBytes > 0
                ? (int)Math.Clamp(cacheOptions.CacheLimitBytes / ChunkHasher.ChunkSize / 4, 16, FileChunkStore.DefaultOpenChunkFiles)
                : FileChunkStore.DefaultOpenChunkFiles,
        });
        try
        {
            var store = new RemoteChunkStore(local, remote, chain.Root, chain.Members.Select(m => m.Map), cacheOptions, ownsCache: true, ownsRemote: ownsRemote);
            return new RemoteCheckpoint(chain, localIndexPath, store);
        }
        catch
        {
            local.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Fetches every chunk of the chain the local store lacks (e.g. before going offline, or to
    /// export the disk with local tools). Progress in chunks; cancel between groups.
    /// </summary>
    public void FetchAll(IProgress<Maintenance.MaintenanceProgress>? progress = null, CancellationToken cancel = default)
    {
        var locations = Store.Locations;
        var buffer = new byte[ChunkHasher.ChunkSize];
        long done = 0;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(4, Store.Options.MaxPrefetches), CancellationToken = cancel };
        // One read per group: the store sees consecutive chunks and fetches whole groups ahead.
        Parallel.For(0, locations.GroupCount, parallel, () => new byte[ChunkHasher.ChunkSize], (g, state, scratch) =>
        {
            for (int o = locations.GroupFirst(g); o < locations.GroupEnd(g); o++)
                Store.TryRead(locations.HashAt(o), scratch, out _);
            Interlocked.Add(ref done, locations.GroupEnd(g) - locations.GroupFirst(g));
            return scratch;
        }, _ => { });
        progress?.Report(new Maintenance.MaintenanceProgress($"Fetching {IndexUri}", "Done", done, locations.Count, "chunks"));
    }

    /// <summary>Closes the store and the local store under it.</summary>
    public void Dispose() => Store.Dispose();
}
