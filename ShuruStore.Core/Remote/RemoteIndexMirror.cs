using ShuruStore.Core.Interop;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Remote;

/// <summary>One index of a mirrored chain.</summary>
/// <param name="Uri">The published index.</param>
/// <param name="Name">Its checkpoint name.</param>
/// <param name="LocalPath">The local mirror: a normal shuru index whose parent is the mirror of the published parent.</param>
/// <param name="Index">The mirror's content.</param>
/// <param name="Map">The published chunk map of the index.</param>
public sealed record MirroredIndex(string Uri, string Name, string LocalPath, ChunkIndexFile Index, ChunkMap Map);

/// <summary>A published chain mirrored into a local chunk store.</summary>
/// <param name="Root">The remote store the chain is published in.</param>
/// <param name="Members">The chain, top first.</param>
public sealed record MirroredChain(S3Location Root, IReadOnlyList<MirroredIndex> Members)
{
    /// <summary>The mirror of the top index: what a disk boots from.</summary>
    public string TopPath => Members[0].LocalPath;

    /// <summary>Where every chunk of the chain is.</summary>
    public ChunkLocations Locations(int groupChunks = 16) => new(Members.Select(m => m.Map), groupChunks);
}

/// <summary>
/// Copies a published chain into a local chunk store so that the local engine (index chains,
/// disks, checkpoints, collection) works on it unchanged: each published index becomes a normal
/// local index under <c>&lt;cas&gt;/remote/mirror/BUCKET/PREFIX/indexes/NAME.idx</c> whose parent
/// path is the mirror of its published parent, beside its chunk map (<c>…/maps/NAME.map</c>), with
/// a record of its origin (<see cref="IndexOrigins"/>). Mirrors are written parents first, each
/// file atomically and its origin record last, so a mirror with a record is complete down to
/// the bottom of its chain; published indexes never change (publishing refuses to replace one
/// with other content), so a complete mirror is used again without asking the remote, and a
/// cached checkpoint boots while the object store is away.
/// </summary>
public static class RemoteIndexMirror
{
    /// <summary>Deepest chain followed.</summary>
    public const int MaxDepth = IndexChain.DefaultMaxDepth;

    /// <summary>The folder holding the mirrors of a remote store's indexes.</summary>
    public static string FolderOf(string casPath, S3Location root) =>
        Path.Combine([Path.GetFullPath(casPath), IndexOrigins.RemoteFolder, "mirror", root.Bucket, .. root.Prefix.Split('/', StringSplitOptions.RemoveEmptyEntries)]);

    /// <summary>The local mirror of a published index.</summary>
    public static string MirrorPathOf(string casPath, S3Location root, string name) =>
        Path.Combine(FolderOf(casPath, root), "indexes", name + RemoteLayout.IndexExtension);

    private static string MapPathOf(string casPath, S3Location root, string name) =>
        Path.Combine(FolderOf(casPath, root), "maps", name + ".map");

    /// <summary>Mirrors the published index <paramref name="name"/> and its chain from
    /// <paramref name="store"/> (rooted at <paramref name="root"/>) into <paramref name="casPath"/>.</summary>
    public static async Task<MirroredChain> FetchAsync(IObjectStore store, S3Location root, string name, string casPath, CancellationToken cancel = default)
    {
        // Top down: each index names its parent. Complete local mirrors end the walk.
        var fetched = new List<(string Name, byte[] RemoteBytes, ChunkIndexFile Index, ChunkMap Map, string? ParentName)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        MirroredIndex? completeBelow = null;
        List<MirroredIndex> reused = [];
        string? current = name;
        while (current is not null)
        {
            cancel.ThrowIfCancellationRequested();
            if (!seen.Add(current))
                throw new ShuruStoreException(ShuruErrorKind.IndexChainCycle, $"published index {RemoteLayout.IndexUri(root, current)} is its own ancestor", RemoteLayout.IndexUri(root, current));
            if (seen.Count > MaxDepth + 1)
                throw new ShuruStoreException(ShuruErrorKind.IndexInvalid, $"the chain of {RemoteLayout.IndexUri(root, name)} is deeper than {MaxDepth}", RemoteLayout.IndexUri(root, name));
            if (TryLoadComplete(casPath, root, current) is { } complete)
            {
                completeBelow = complete;
                reused = LoadCompleteChain(casPath, root, complete, seen);
                break;
            }
            string uri = RemoteLayout.IndexUri(root, current);
            var bytes = await GetWholeAsync(store, RemoteLayout.IndexKey(current), uri,
                fetched.Count == 0 ? ShuruErrorKind.IndexNotFound : ShuruErrorKind.ParentIndexMissing, cancel).ConfigureAwait(false);
            var index = ParseIndex(bytes, casPath, uri);
            string mapUri = root.Child(RemoteLayout.MapKey(current)).ToString();
            var mapBytes = await GetWholeAsync(store, RemoteLayout.MapKey(current), mapUri, ShuruErrorKind.RemoteObjectMissing, cancel).ConfigureAwait(false);
            var map = ChunkMap.Parse(mapBytes, mapUri);
            if (!map.BelongsTo(bytes))
                throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, $"chunk map {mapUri} belongs to another version of {uri}", mapUri);
            if (index.FallbackPath is not null)
                throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, $"published index {uri} names a base image file; published chains have none", uri);
            string? parentName = null;
            if (index.ParentPath is { } parent)
            {
                if (!S3Location.IsS3Uri(parent))
                    throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, $"published index {uri} names a local parent '{parent}'; published parents are s3:// URIs", uri);
                var (parentRoot, pn) = RemoteLayout.ParseIndexUri(parent);
                if (!parentRoot.Equals(root))
                    throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, $"published index {uri} names parent {parent} in another store ({root} expected)", uri);
                parentName = pn;
            }
            fetched.Add((current, bytes, index, map, parentName));
            current = parentName;
        }

        // Bottom up: a mirror is written only once its parent's is complete.
        var written = new List<MirroredIndex>();
        string? parentPath = completeBelow?.LocalPath;
        for (int i = fetched.Count - 1; i >= 0; i--)
        {
            var (n, remoteBytes, remoteIndex, map, _) = fetched[i];
            string path = MirrorPathOf(casPath, root, n);
            string mapPath = MapPathOf(casPath, root, n);
            var mirror = new ChunkIndexFile(remoteIndex.DiskSize, parentPath, null, remoteIndex.Entries);
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                Directory.CreateDirectory(Path.GetDirectoryName(mapPath)!);
                var mapBytes = map.ToBytes();
                AtomicFile.Write(mapPath, s => s.Write(mapBytes));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ShuruStoreException(Errno.IsNoSpace(e) ? ShuruErrorKind.NoSpace : ShuruErrorKind.IOError, $"cannot write the mirror of {RemoteLayout.IndexUri(root, n)}: {e.Message}", mapPath, e);
            }
            mirror.Save(path);
            var localBytes = File.ReadAllBytes(path);
            IndexOrigins.Record(casPath, localBytes, new IndexOrigin(RemoteLayout.IndexUri(root, n), Convert.ToHexStringLower(ChunkMap.DigestOf(remoteBytes)), remoteBytes.Length));
            written.Insert(0, new MirroredIndex(RemoteLayout.IndexUri(root, n), n, path, ChunkIndexFile.Load(path), map));
            parentPath = path;
        }
        return new MirroredChain(root, [.. written, .. reused]);
    }

    /// <summary>The mirrored chain of a local mirror file, if it is a complete mirror.</summary>
    public static MirroredChain? TryLoad(string casPath, string localPath)
    {
        string full = Path.GetFullPath(localPath);
        if (!File.Exists(full)) return null;
        foreach (var origin in IndexOrigins.Find(casPath, File.ReadAllBytes(full)))
        {
            var (root, name) = RemoteLayout.ParseIndexUri(origin.Uri);
            if (!string.Equals(MirrorPathOf(casPath, root, name), full, StringComparison.Ordinal)) continue;
            if (TryLoadComplete(casPath, root, name) is { } top)
                return new MirroredChain(root, LoadCompleteChain(casPath, root, top, new HashSet<string>(StringComparer.Ordinal) { name }));
        }
        return null;
    }

    /// <summary>A complete local mirror of <paramref name="name"/> (file, map and origin record), or null.</summary>
    private static MirroredIndex? TryLoadComplete(string casPath, S3Location root, string name)
    {
        string path = MirrorPathOf(casPath, root, name);
        string mapPath = MapPathOf(casPath, root, name);
        if (!File.Exists(path) || !File.Exists(mapPath)) return null;
        byte[] localBytes;
        try { localBytes = File.ReadAllBytes(path); }
        catch (IOException) { return null; }
        string uri = RemoteLayout.IndexUri(root, name);
        if (!IndexOrigins.Find(casPath, localBytes).Any(o => o.Uri == uri)) return null;
        var map = ChunkMap.Parse(File.ReadAllBytes(mapPath), mapPath);
        return new MirroredIndex(uri, name, path, ChunkIndexFile.Load(path), map);
    }

    /// <summary>The complete mirrors below a complete mirror, top first (itself included).</summary>
    private static List<MirroredIndex> LoadCompleteChain(string casPath, S3Location root, MirroredIndex top, HashSet<string> seen)
    {
        var chain = new List<MirroredIndex> { top };
        var current = top;
        while (current.Index.ParentPath is { } parentPath)
        {
            string parentName = Path.GetFileNameWithoutExtension(parentPath);
            if (!seen.Add(parentName) || chain.Count > MaxDepth)
                throw new ShuruStoreException(ShuruErrorKind.IndexChainCycle, $"mirror '{current.LocalPath}' names parent '{parentPath}', already in its chain", current.LocalPath);
            current = TryLoadComplete(casPath, root, parentName)
                ?? throw new ShuruStoreException(ShuruErrorKind.ParentIndexMissing,
                    $"mirror '{current.LocalPath}' names parent '{parentPath}', whose mirror is incomplete; remove '{current.LocalPath}' to mirror the chain again", parentPath);
            chain.Add(current);
        }
        return chain;
    }

    private static ChunkIndexFile ParseIndex(byte[] bytes, string casPath, string uri)
    {
        // The index parser reads files: the published bytes go through a scratch file.
        string dir = Path.Combine(Path.GetFullPath(casPath), IndexOrigins.RemoteFolder);
        Directory.CreateDirectory(dir);
        string tmp = Path.Combine(dir, ".fetch-" + Guid.NewGuid().ToString("N")[..12] + ".idx");
        try
        {
            File.WriteAllBytes(tmp, bytes);
            return ChunkIndexFile.Load(tmp);
        }
        catch (ShuruStoreException e) when (e.Kind == ShuruErrorKind.IndexInvalid)
        {
            throw new ShuruStoreException(ShuruErrorKind.IndexInvalid, e.Message.Replace($"'{tmp}'", uri, StringComparison.Ordinal), uri, e);
        }
        finally
        {
            try { File.Delete(tmp); } catch (IOException) { }
        }
    }

    /// <summary>A whole object whose length is asked first (HEAD, then one GET of that length).</summary>
    internal static async Task<byte[]> GetWholeAsync(IObjectStore store, string key, string uri, ShuruErrorKind missingKind, CancellationToken cancel)
    {
        for (int attempt = 0; ; attempt++)
        {
            var info = await store.HeadAsync(key, cancel).ConfigureAwait(false)
                ?? throw new ShuruStoreException(missingKind, $"{uri} does not exist", uri);
            if (info.Length > Array.MaxLength)
                throw new ShuruStoreException(ShuruErrorKind.RemoteInvalid, $"{uri} is {info.Length} bytes, more than can be read at once", uri);
            // One byte more than announced: an object replaced by a longer one between the two
            // calls is seen, and asked again, instead of being cut.
            var buffer = new byte[info.Length + 1];
            int n;
            try { n = await store.GetAsync(key, buffer, cancel).ConfigureAwait(false); }
            catch (ShuruStoreException e) when (e.Kind == ShuruErrorKind.RemoteObjectMissing)
            { throw new ShuruStoreException(missingKind, $"{uri} does not exist", uri, e); }
            catch (ShuruStoreException e) when (e.Kind == ShuruErrorKind.RemoteInvalid && attempt < 2) { continue; }
            return buffer.AsSpan(0, n).ToArray();
        }
    }
}
