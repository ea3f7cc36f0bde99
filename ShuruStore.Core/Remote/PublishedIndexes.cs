using ShuruStore.Core.Maintenance;

namespace ShuruStore.Core.Remote;

/// <summary>
/// Published indexes read by tools that take a path (inspecting, comparing, exporting): the
/// chain is mirrored into a local folder as normal local indexes, and the tools read those.
/// Mirrors are verified against their maps and never change (published indexes never do), so a
/// mirror made once is used again.
/// </summary>
public static class PublishedIndexes
{
    /// <summary>Where mirrors for inspection go when no chunk store is named:
    /// <c>$XDG_CACHE_HOME/shurustore</c>, else <c>~/.cache/shurustore</c>. It holds indexes and
    /// maps only, never chunks.</summary>
    public static string DefaultMirrorRoot()
    {
        string? cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (string.IsNullOrEmpty(cache)) cache = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(cache, "shurustore");
    }

    /// <summary>Mirrors the published index <paramref name="indexUri"/> and its chain (endpoint and
    /// credentials from the AWS environment) into <paramref name="casPath"/> (null: the
    /// <see cref="DefaultMirrorRoot"/>) and returns the local path of its top.</summary>
    public static string Mirror(string indexUri, string? casPath = null, ObjectStoreOptions? storeOptions = null, CancellationToken cancel = default) =>
        MirrorChain(indexUri, casPath, storeOptions, cancel).TopPath;

    /// <summary>As <see cref="Mirror"/>, returning the whole mirrored chain, so a tool can show
    /// each member by its published URI rather than by its local mirror's path.</summary>
    public static MirroredChain MirrorChain(string indexUri, string? casPath = null, ObjectStoreOptions? storeOptions = null, CancellationToken cancel = default)
    {
        var (root, name) = RemoteLayout.ParseIndexUri(indexUri);
        casPath ??= DefaultMirrorRoot();
        Directory.CreateDirectory(casPath);
        using var remote = S3ObjectStore.FromEnvironment(root, storeOptions);
        return RemoteIndexMirror.FetchAsync(remote, root, name, casPath, cancel).GetAwaiter().GetResult();
    }

    /// <summary>
    /// Writes the disk of the published index <paramref name="indexUri"/> to a raw image, with
    /// <paramref name="casPath"/> as the local store the chunks go through. Without a cache limit
    /// every chunk the store lacks is fetched into it first (verified against its name), then the
    /// disk is exported from there as any local index is; with one, the image is written as the
    /// chunks arrive and fetched chunks beyond the limit are evicted again (the store keeps at
    /// most <paramref name="cacheLimitBytes"/> of them), for images larger than the room a cache has.
    /// </summary>
    public static DiskExportResult Export(string indexUri, string casPath, string destination, bool overwrite = false,
        ObjectStoreOptions? storeOptions = null, IProgress<MaintenanceProgress>? progress = null, CancellationToken cancel = default,
        long cacheLimitBytes = 0)
    {
        var options = new RemoteCheckpointOptions
        {
            ObjectStore = storeOptions ?? ObjectStoreOptions.Default,
            Cache = RemoteChunkStoreOptions.Default with { CacheLimitBytes = cacheLimitBytes },
        };
        if (cacheLimitBytes == 0)
        {
            string localIndex;
            using (var whole = RemoteCheckpoint.Open(indexUri, casPath, options, cancel: cancel))
            {
                whole.FetchAll(progress, cancel);
                localIndex = whole.LocalIndexPath;
            }
            return DiskExporter.Export(localIndex, casPath, destination, overwrite, progress, cancel);
        }
        using var checkpoint = RemoteCheckpoint.Open(indexUri, casPath, options, cancel: cancel);
        return DiskExporter.Export(new DiskExportOptions
        {
            IndexPath = checkpoint.LocalIndexPath, CasPath = casPath, Destination = destination, Overwrite = overwrite,
            ChunkStore = checkpoint.Store,
        }, progress, cancel);
    }
}
