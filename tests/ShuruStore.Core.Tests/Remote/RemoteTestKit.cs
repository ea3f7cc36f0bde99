using ShuruStore.Core.BlockDevices;
using ShuruStore.Core.Remote;
using ShuruStore.Core.Storage;

namespace ShuruStore.Core.Tests.Remote;

/// <summary>
/// A real S3ObjectStore with counters and an optional fault: the remote-tier tests use it to
/// count what was uploaded and to cut an upload short. Every call reaches the real cluster.
/// </summary>
internal sealed class CountingObjectStore(S3ObjectStore inner) : IObjectStore, IDisposable
{
    private int _puts, _packPuts, _gets;

    public S3ObjectStore Inner => inner;
    public S3Location Location => inner.Location;
    public int Puts => Volatile.Read(ref _puts);
    public int PackPuts => Volatile.Read(ref _packPuts);
    public int Gets => Volatile.Read(ref _gets);

    /// <summary>Runs before every PUT of a pack with the number of pack PUTs made so far; a throw fails it.</summary>
    public Action<int>? BeforePackPut { get; set; }

    public string Description => inner.Description;

    public Task<int> GetAsync(string key, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _gets);
        return inner.GetAsync(key, destination, cancellationToken);
    }

    public Task<int> GetRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _gets);
        return inner.GetRangeAsync(key, offset, destination, cancellationToken);
    }

    public Task PutAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
    {
        if (key.StartsWith(RemoteLayout.PacksFolder, StringComparison.Ordinal))
        {
            BeforePackPut?.Invoke(Volatile.Read(ref _packPuts));
            Interlocked.Increment(ref _packPuts);
        }
        Interlocked.Increment(ref _puts);
        return inner.PutAsync(key, content, cancellationToken);
    }

    public Task<ObjectInfo?> HeadAsync(string key, CancellationToken cancellationToken = default) => inner.HeadAsync(key, cancellationToken);
    public Task<ObjectListPage> ListPageAsync(string prefix, string? continuationToken, CancellationToken cancellationToken = default) =>
        inner.ListPageAsync(prefix, continuationToken, cancellationToken);
    public Task DeleteAsync(IReadOnlyCollection<string> keys, CancellationToken cancellationToken = default) => inner.DeleteAsync(keys, cancellationToken);

    public void Dispose() => inner.Dispose();
}

/// <summary>A local chain as a host makes it: a base image, a lazy disk over it with some
/// pieces ingested and some chunks written, checkpointed (the parent), booted again, written,
/// checkpointed again (the top).</summary>
internal sealed class LocalChain
{
    public const int CS = 65536;

    /// <summary>Base: 40 pieces, every 5th all zeros, and a 1000-byte tail.</summary>
    public const int BasePieces = 40;

    public required string BasePath { get; init; }
    public required string CasPath { get; init; }
    public required string ParentPath { get; init; }
    public required string TopPath { get; init; }
    /// <summary>What a disk booted from the top reads.</summary>
    public required byte[] Expected { get; init; }

    public static LocalChain Create(TempDir t, int seed = 1)
    {
        var baseBytes = new byte[BasePieces * CS + 1000];
        var rng = new Random(seed);
        for (int p = 0; p < BasePieces; p++)
            if (p % 5 != 0) rng.NextBytes(baseBytes.AsSpan(p * CS, CS));
        rng.NextBytes(baseBytes.AsSpan(BasePieces * CS));
        File.WriteAllBytes(t["base.img"], baseBytes);

        // Lazy over the base: some pieces read (ingested), some written, one zeroed.
        using (var d = CowDisk.Open(new CowDiskOptions { BaseImagePath = t["base.img"], CasPath = t.Cas, DiskSize = (BasePieces + 8) * CS }))
        {
            var buf = new byte[CS];
            for (int c = 1; c < 12; c += 2) d.Read((long)c * CS, buf);
            d.Write(3L * CS, TempDir.Pattern(2 * CS, seed + 10), WriteFlags.None);
            d.Write(20L * CS + 100, TempDir.Pattern(5000, seed + 11), WriteFlags.None);
            d.Write((BasePieces + 2L) * CS, TempDir.Pattern(3 * CS, seed + 12), WriteFlags.None);
            d.WriteZeroes(7L * CS, CS, WriteFlags.None);
            d.WaitForIngestion();
            d.SaveCheckpoint(t["parent.idx"]);
        }
        // The parent booted: more writes, a duplicate of an existing chunk, then the top.
        byte[] expected;
        using (var d = CowDisk.Open(new CowDiskOptions { CasPath = t.Cas, IndexPath = t["parent.idx"] }))
        {
            d.Write(9L * CS, TempDir.Pattern(CS, seed + 20), WriteFlags.None);
            d.Write(30L * CS + 7, TempDir.Pattern(CS, seed + 21), WriteFlags.None);
            d.Write(44L * CS, TempDir.Pattern(CS, seed + 20), WriteFlags.None);
            d.SaveCheckpoint(t["top.idx"]);
            expected = new byte[d.Size];
            d.Read(0, expected);
        }
        return new LocalChain { BasePath = t["base.img"], CasPath = t.Cas, ParentPath = t["parent.idx"], TopPath = t["top.idx"], Expected = expected };
    }
}

/// <summary>Helpers of the remote-tier tests.</summary>
internal static class RemoteKit
{
    /// <summary>A counting store at a fresh prefix of the test bucket.</summary>
    public static CountingObjectStore NewStore(CephCluster cluster, string what, ObjectStoreOptions? options = null) =>
        new(new S3ObjectStore(cluster.NewLocation(what), cluster.Settings(), options));

    /// <summary>Removes every object under a store's root (tests leave nothing behind).</summary>
    public static void Clean(IObjectStore store)
    {
        try
        {
            var keys = store.ListAllAsync("").ToBlockingEnumerable().Select(o => o.Key).ToList();
            if (keys.Count > 0) store.DeleteAsync(keys).GetAwaiter().GetResult();
        }
        catch (ShuruStoreException) { }
    }

    /// <summary>Opens a published checkpoint from a (usually empty) local store and a disk over it.</summary>
    public static (RemoteCheckpoint Remote, CowDisk Disk) Boot(IObjectStore store, S3Location root, string name, string casPath,
        RemoteChunkStoreOptions? cache = null)
    {
        var remote = RemoteCheckpoint.Open(store, root, name, casPath, cache);
        try
        {
            var disk = CowDisk.Open(new CowDiskOptions { CasPath = casPath, IndexPath = remote.LocalIndexPath, ChunkStore = remote.Store });
            return (remote, disk);
        }
        catch
        {
            remote.Dispose();
            throw;
        }
    }

    public static byte[] ReadAll(CowDisk d)
    {
        var buf = new byte[d.Size];
        d.Read(0, buf);
        return buf;
    }

    /// <summary>Asserts two disk images are equal, naming the first differing chunk.</summary>
    public static void SameBytes(byte[] expected, byte[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        int at = expected.AsSpan().CommonPrefixLength(actual);
        Assert.True(at == expected.Length, $"the disks differ from byte {at} (chunk {at / LocalChain.CS})");
    }
}

/// <summary>What a cluster test class owns: the stores it made (emptied and closed at the end)
/// and its scratch directories.</summary>
public abstract class RemoteScratch(CephCluster cluster) : IDisposable
{
    private readonly List<CountingObjectStore> _stores = [];
    private readonly List<TempDir> _dirs = [];

    protected CephCluster Cluster => cluster;

    internal CountingObjectStore Store(string what)
    {
        var s = RemoteKit.NewStore(cluster, what);
        _stores.Add(s);
        return s;
    }

    internal TempDir Dir()
    {
        var d = new TempDir();
        _dirs.Add(d);
        return d;
    }

    public void Dispose()
    {
        foreach (var s in _stores) { RemoteKit.Clean(s); s.Dispose(); }
        foreach (var d in _dirs) d.Dispose();
    }
}
